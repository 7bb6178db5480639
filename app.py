"""The dashboard: `python app.py` serves it at http://127.0.0.1:7860 (and prints the URL).

    python app.py [--host 127.0.0.1] [--port 7860] [--home DIR] [--auth USER:PASSWORD]

It launches, watches, compares and exports runs through backend.actions; it never trains in its
own process (Launch queues the run and makes sure a background worker is alive). Binding to
anything but loopback needs --auth (or NGRPO_DASHBOARD_AUTH), unless you pass
--no-auth-on-network, knowing anyone who can reach the port can start and delete runs. Share links,
analytics, /monitoring and Gradio's run history are off. Nothing is built at import time:
`build_app(home)` makes a fresh app, so each test gets its own.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

AUTH_ENV = "NGRPO_DASHBOARD_AUTH"
CSS = """
.ngrpo-gallery, .ngrpo-compare img { image-rendering: pixelated; }
.ngrpo-group { display: flex; align-items: flex-start; gap: 10px; margin: 0 0 12px 0; flex-wrap: wrap; }
.ngrpo-prompt { width: 200px; font-size: 0.85em; padding-top: 4px; }
.ngrpo-group figure { margin: 0; text-align: center; }
.ngrpo-group img { width: 128px; height: 128px; image-rendering: pixelated; border-radius: 4px; }
.ngrpo-group figcaption, .ngrpo-score, .ngrpo-mean { font-size: 0.75em; opacity: 0.85; }
.ngrpo-compare { width: auto; border-collapse: collapse; }
.ngrpo-compare td, .ngrpo-compare th { padding: 4px 10px; text-align: center; vertical-align: top; }
.ngrpo-compare img { display: block; margin: 0 auto 2px auto; width: 128px; height: 128px; border-radius: 4px; }
.ngrpo-rowhead { max-width: 200px; font-size: 0.8em; font-weight: normal; text-align: left; }
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth expects USER:PASSWORD (both non-empty)")
    return user, password


def build_app(home: str | os.PathLike | None = None):
    """A fresh dashboard for the registry at `home` (see storage/home.py for the default)."""
    import gradio as gr

    from .storage.home import resolve_home, runs_root
    from .storage.registry import open_registry
    from .ui import compare, export, new_run, run_detail, runs
    from .ui.common import Context, run_picker_update

    folder = resolve_home(home)
    open_registry(folder)  # create or migrate it now, not in the first request
    runs_root(folder).mkdir(parents=True, exist_ok=True)
    # Run folders are served in place (images, LoRA downloads); nothing else on disk is reachable.
    gr.set_static_paths([runs_root(folder)])
    ctx = Context(folder)
    with gr.Blocks(title="neighbor-grpo", analytics_enabled=False) as app:
        gr.Markdown(f"## neighbor-grpo · Neighbor GRPO alignment dashboard\nRegistry: `{folder}`")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("New run", id="new", elem_id="tab-new"):
                launched = new_run.build(ctx)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as runs_tab:
                table = runs.build(ctx)
            with gr.Tab("Run detail", id="detail", elem_id="tab-detail") as detail_tab:
                detail = run_detail.build(ctx)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as compare_tab:
                comparing = compare.build(ctx)
            with gr.Tab("Export", id="export", elem_id="tab-export") as export_tab:
                exporting = export.build(ctx)
        read = {"concurrency_limit": None, "show_progress": "hidden"}
        # A launch wakes the Runs table's timer (it sleeps while nothing runs).
        launched["launched"].then(table["refresh"], None, table["outputs"], **read)
        runs_tab.select(table["refresh"], None, table["outputs"], **read)
        # Each run picker refreshes its choices when its tab opens, keeping the run it shows.
        for tab, part in ((detail_tab, detail), (compare_tab, comparing), (export_tab, exporting)):
            tab.select(lambda run_id: run_picker_update(folder, run_id), part["run"], part["run"], **read)
        table["open"].click(
            lambda run_id: (gr.Tabs(selected="detail"), run_picker_update(folder, run_id)),
            table["selected"], [tabs, detail["run"]], **read,
        )  # fmt: skip
        describe_prompts, describe_estimate, inputs = launched["refresh"]
        app.load(describe_prompts, inputs, launched["prompt_info"], **read)
        app.load(describe_estimate, inputs, launched["estimate"], **read)
    return app


def launch(app, host: str, port: int, auth: tuple[str, str] | None, block: bool = True):
    """Start serving; returns the app (with `.local_url`). The dashboard's own settings: no share
    link, no analytics, no /monitoring, no run history, errors only as our messages."""
    return app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, auth=auth, share=False, enable_monitoring=False, run_history=False,
        prevent_thread_lock=not block, quiet=True, footer_links=[], css=CSS, show_error=False,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    parser.add_argument("--home", help="registry and run folders (default: $NGRPO_HOME, else the user data folder)")
    parser.add_argument("--auth", help=f"USER:PASSWORD for basic auth (or set ${AUTH_ENV})")
    parser.add_argument(
        "--no-auth-on-network", action="store_true",
        help="allow a non-loopback --host without --auth (anyone reaching the port can start and delete runs)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-plugins", action="store_true",
        help="let runs load reward plugins (Python files you name in a config: they run as code; off by default)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.allow_plugins:
        from .backend.rewards.plugin import allow_plugins

        allow_plugins()  # workers this dashboard starts inherit the opt-in
    auth = parse_auth(args.auth or os.environ.get(AUTH_ENV))
    if not is_loopback(args.host) and auth is None and not args.no_auth_on_network:
        parser.error(
            f"--host {args.host} exposes the dashboard to the network: add --auth USER:PASSWORD "
            "(or pass --no-auth-on-network if you really mean it)"
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    port = args.port or free_port(args.host)
    app = build_app(args.home)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"neighbor-grpo dashboard: open http://{shown_host}:{port}  (Ctrl-C stops it)", flush=True)
    launch(app, args.host, port, auth)
    return 0


def free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


if __name__ == "__main__" and not __package__:
    # `python app.py` runs this file as a script; the code lives in the installed package
    # (python install.py installs it), whose relative imports need the package context.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    from neighbor_grpo.app import main as package_main

    sys.exit(package_main())
