"""How the dashboard holds up: refresh latency with a run training and pages open, the Runs
table's load time on a big registry, and what open pages cost the training run.

Pages poll the way a browser does: each page is one session whose visible tab's timer posts a
tick (a direct POST to /gradio_api/run/<event>; ticks skip the queue), and the server remembers
what that page already shows, so a tick with nothing new sends nothing. Ticks are reported split
by whether they carried news (a new metric step, new images, a status change) or not.

    python bench/dashboard.py --json dashboard.json            # 1,000 runs, 1,000,000 metric rows
    python bench/dashboard.py --quick --json dashboard.json    # a pipeline check (small, short)

Targets (issue 8, 2 cores): refresh p95 under 300 ms; Runs table under 1 s; training s/iter
within 10 % of the same run with no page open. Prints a table, writes JSON. Run it on an idle
machine: every number here is wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from neighbor_grpo.app import build_app, free_port, launch
from neighbor_grpo.backend import actions
from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.runs import insert_run
from neighbor_grpo.storage.schema import Metric, Run
from neighbor_grpo.ui.common import POLL_S
from neighbor_grpo.ui.runs import table

METRICS = ("reward", "eval/reward", "eval/gold", "loss", "clip_fraction", "flat_group_fraction", "s_per_iter",
           "grad_norm", "lr", "reward/shapes_fidelity")  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def populate(home: Path, runs: int, metric_rows: int) -> float:
    """`runs` finished runs sharing `metric_rows` metric rows (10 metrics per step); seconds taken."""
    started = time.perf_counter()
    stored = actions.validate_run(home, actions.RunRequest({"name": "bench", "iterations": 100})).stored
    ids = [insert_run(home, {**stored, "name": f"bench-{i:04d}"}, "shapes:train") for i in range(runs)]
    registry = open_registry(home)
    steps = max(1, metric_rows // (runs * len(METRICS)))
    with registry.write() as session:
        session.execute(Run.__table__.update().values(status="finished", progress_step=steps, finished_at=time.time()))
    now = time.time()
    for chunk in range(0, len(ids), 50):
        rows = [
            {"run_id": run_id, "step": step, "name": name, "value": (step * 7 + run_id) % 101 / 100.0, "wall_time": now}
            for run_id in ids[chunk : chunk + 50]
            for step in range(1, steps + 1)
            for name in METRICS
        ]
        with registry.write() as session:
            session.execute(Metric.__table__.insert(), rows)
    return time.perf_counter() - started


def time_table(home: Path, repeats: int) -> dict:
    direct, frame = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        actions.list_runs(home)
        direct.append(time.perf_counter() - started)
        started = time.perf_counter()
        table(home)
        frame.append(time.perf_counter() - started)
    return {"list_runs_s": statistics.median(direct), "table_dataframe_s": statistics.median(frame)}


def carries_news(data: list) -> bool:
    """Whether a tick's outputs hold anything but "no change" (gr.skip(), or a State's None)."""

    def empty(item) -> bool:
        return item is None or (
            isinstance(item, dict)
            and item.get("__type__") == "update"
            and all(key == "__type__" or (key == "props" and empty(value)) for key, value in item.items())
        )

    return not all(empty(item) for item in data)


class Page(threading.Thread):
    """One open browser page: its visible tab's timer ticks every `every` seconds, posting what
    the browser posts (the event's inputs, State inputs as null) in its own session."""

    def __init__(self, url: str, api_name: str, args: tuple, every: float, stop: threading.Event):
        super().__init__(daemon=True)
        import requests

        self.http, self.session_hash = requests.Session(), uuid.uuid4().hex
        self.endpoint = f"{url}/gradio_api/run/{api_name.lstrip('/')}"
        self.api_name, self.args, self.every, self.stop = api_name, args, every, stop
        self.latencies: list[tuple[float, bool]] = []  # (seconds, whether it carried news)

    def tick(self) -> tuple[float, bool]:
        started = time.perf_counter()
        response = self.http.post(self.endpoint, json={"data": list(self.args), "session_hash": self.session_hash},
                                  timeout=120)  # fmt: skip
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, carries_news(response.json()["data"])

    def run(self) -> None:
        while not self.stop.is_set():
            elapsed, news = self.tick()
            self.latencies.append((elapsed, news))
            self.stop.wait(max(0.0, self.every - elapsed))


def detail_ticks(url: str, home: Path, run_id: int, repeats: int) -> dict:
    """One Run-detail page of a finished run, ticked on demand: opening it (everything sent),
    ticks with nothing new, and ticks right after a new metric step landed (curves resent)."""
    page = Page(url, "/detail_tick", (run_id, None, True, None), 0.0, threading.Event())
    opened, news = page.tick()
    if not news:
        raise RuntimeError("opening a run page sent nothing: the benchmark is not measuring what it says")
    idle = [page.tick() for _ in range(repeats)]
    reporter = RegistryReporter(open_registry(home), run_id)
    step = max(step for points in actions.run_curves(home, run_id).values() for step, _ in points)
    fresh = []
    for i in range(1, repeats + 1):
        reporter.metrics(step + i, {"reward": 0.5, "loss": 0.1, "s_per_iter": 1.0})
        reporter.flush()
        fresh.append(page.tick())
    if any(news for _, news in idle) or not all(news for _, news in fresh):
        raise RuntimeError("ticks did not send exactly what changed: fix the dashboard before timing it")
    return {"open_s": opened, "nothing_new": summary([t for t, _ in idle]), "new_step": summary([t for t, _ in fresh])}


def summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"requests": 0, "p50_ms": None, "p95_ms": None}
    return {"requests": len(latencies), "p50_ms": 1000 * percentile(latencies, 0.5),
            "p95_ms": 1000 * percentile(latencies, 0.95)}  # fmt: skip


def serve(home: Path):
    app = build_app(home)
    port = free_port("127.0.0.1")
    launch(app, "127.0.0.1", port, None, block=False)
    return app, f"http://127.0.0.1:{port}"


def refresh_latency(url: str, requests: int) -> list[float]:
    """The Runs table's Refresh button (a queued event, as the browser sends it)."""
    from gradio_client import Client

    client, latencies = Client(url, verbose=False), []
    for _ in range(requests):
        started = time.perf_counter()
        client.predict(api_name="/refreshed")
        latencies.append(time.perf_counter() - started)
    return latencies


def train(home: Path, config: dict, url: str | None, pages: int, every: float) -> dict:
    """Queue one run, let a background worker train it, with `pages` pages polling meanwhile."""
    queued = actions.queue_run(home, actions.RunRequest(config))
    stop, open_pages = threading.Event(), []
    if url is not None:
        for i in range(pages):  # alternate Runs-table pages and Run-detail pages of the live run
            args, api = ((None,), "/runs_tick") if i % 2 == 0 else ((queued.run_id, None, True, None), "/detail_tick")
            open_pages.append(Page(url, api, args, every, stop))
        for page in open_pages:
            page.start()
    while actions.get_run(home, queued.run_id).status in ("queued", "running"):
        time.sleep(0.5)
    stop.set()
    for page in open_pages:
        page.join()
    info = actions.get_run(home, queued.run_id)
    per_iteration = [
        v for step, v in actions.run_curves(home, queued.run_id, ["s_per_iter"], 10**6)["s_per_iter"] if step > 2
    ]
    return {
        "run_id": queued.run_id,
        "status": info.status,
        "s_per_iter_median": statistics.median(per_iteration) if per_iteration else None,
        "ticks": {
            page_kind: [x for page in open_pages if page.api_name == api for x in page.latencies]
            for page_kind, api in (("runs", "/runs_tick"), ("detail", "/detail_tick"))
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--metric-rows", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=40, help="iterations of each training run")
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--every", type=float, default=POLL_S, help="seconds between a page's refreshes (the app's)")
    parser.add_argument("--quick", action="store_true", help="100 runs, 100k rows, 12 iterations")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.metric_rows, args.iterations = 100, 100_000, 12
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "load_average_before": os.getloadavg()},
        "settings": vars(args) | {"json": str(args.json) if args.json else None},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ngrpo-bench-dashboard-") as folder:
        big, small = Path(folder) / "big", Path(folder) / "train"
        result["populate_s"] = populate(big, args.runs, args.metric_rows)
        result["table"] = time_table(big, 5)
        app, url = serve(big)
        try:
            result["table"]["http_refresh_s"] = statistics.median(refresh_latency(url, 5))
            runs_page = Page(url, "/runs_tick", (None,), 0.0, threading.Event())
            runs_page.tick()  # the first tick of a page loads the table
            result["table"]["http_tick_nothing_new_s"] = statistics.median(runs_page.tick()[0] for _ in range(10))
        finally:
            app.close()
        config = actions.load_preset("tiny_neighbor_grpo") | {"name": "bench-train", "iterations": args.iterations}
        config["eval"] = {**config.get("eval", {}), "every": 0}
        config["checkpoint_every"] = args.iterations
        quiet = train(small, config, None, 0, args.every)
        app, url = serve(small)
        try:
            watched = train(small, config, url, args.pages, args.every)
            result["detail_ticks"] = detail_ticks(url, small, watched["run_id"], 20)
        finally:
            app.close()
    ticks = watched["ticks"]
    every = [t for kind in ticks.values() for t, _ in kind]
    result["refresh"] = {"all": summary(every)} | {
        f"{kind}_{'news' if wanted else 'nothing_new'}": summary([t for t, news in ticks[kind] if news == wanted])
        for kind in ticks
        for wanted in (False, True)
    }
    result["training"] = {
        "s_per_iter_no_pages": quiet["s_per_iter_median"],
        "s_per_iter_with_pages": watched["s_per_iter_median"],
        "slowdown": watched["s_per_iter_median"] / quiet["s_per_iter_median"] - 1,
    }
    result["machine"]["load_average_after"] = os.getloadavg()
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def report(r: dict) -> None:
    t, f, d, tr = r["table"], r["refresh"], r["detail_ticks"], r["training"]

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    rows = [
        ("Runs table: list_runs (SQL + settle)", ms(1000 * t["list_runs_s"]), "< 1 s"),
        ("Runs table: DataFrame for the page", ms(1000 * t["table_dataframe_s"]), "< 1 s"),
        ("Runs table: Refresh button over HTTP", ms(1000 * t["http_refresh_s"]), "< 1 s"),
        ("Runs table: tick with nothing new over HTTP", ms(1000 * t["http_tick_nothing_new_s"]), "< 1 s"),
    ]
    for key, label in (("all", "every tick"), ("runs_nothing_new", "Runs ticks, nothing new"),
                       ("runs_news", "Runs ticks with news"), ("detail_nothing_new", "Run-detail ticks, nothing new"),
                       ("detail_news", "Run-detail ticks with news")):  # fmt: skip
        part = f[key]
        rows.append((f"while training: {label} ({part['requests']}), p50", ms(part["p50_ms"]), ""))
        rows.append((f"while training: {label}, p95", ms(part["p95_ms"]), "< 300 ms" if key == "all" else ""))
    rows += [
        ("run page, on demand: opening a run (everything)", ms(1000 * d["open_s"]), ""),
        ("run page, on demand: tick with nothing new, p50 / p95",
         f"{ms(d['nothing_new']['p50_ms'])} / {ms(d['nothing_new']['p95_ms'])}", ""),
        ("run page, on demand: tick after a new step, p50 / p95",
         f"{ms(d['new_step']['p50_ms'])} / {ms(d['new_step']['p95_ms'])}", ""),
        ("training s/iter, no page open", f"{tr['s_per_iter_no_pages']:.3f} s", ""),
        (f"training s/iter, {r['settings']['pages']} pages open", f"{tr['s_per_iter_with_pages']:.3f} s", ""),
        ("slowdown from open pages", f"{100 * tr['slowdown']:+.1f} %", "within ±10 %"),
    ]  # fmt: skip
    s = r["settings"]
    print(
        f"\n{s['runs']} runs, {s['metric_rows']:,} metric rows; load average before {r['machine']['load_average_before']}"
        f", after {r['machine']['load_average_after']}"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'value':>17}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>17}  {target}")


if __name__ == "__main__":
    sys.exit(main())
