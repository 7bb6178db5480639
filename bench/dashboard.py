"""How the dashboard holds up: refresh latency with a run training and pages open, the Runs
table's load time on a big registry, and what open pages cost the training run.

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
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from neighbor_grpo.app import build_app, free_port, launch
from neighbor_grpo.backend import actions
from neighbor_grpo.storage.registry import open_registry
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


class Page(threading.Thread):
    """One open browser page: its visible tab's timer asks the server every `every` seconds."""

    def __init__(self, url: str, api_name: str, args: tuple, every: float, stop: threading.Event):
        super().__init__(daemon=True)
        from gradio_client import Client

        self.client = Client(url, verbose=False)
        self.api_name, self.args, self.every, self.stop = api_name, args, every, stop
        self.latencies: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.client.predict(*self.args, api_name=self.api_name)
            elapsed = time.perf_counter() - started
            self.latencies.append(elapsed)
            self.stop.wait(max(0.0, self.every - elapsed))


def serve(home: Path):
    app = build_app(home)
    port = free_port("127.0.0.1")
    launch(app, "127.0.0.1", port, None, block=False)
    return app, f"http://127.0.0.1:{port}"


def refresh_latency(url: str, run_id: int, requests: int) -> list[float]:
    from gradio_client import Client

    client, latencies = Client(url, verbose=False), []
    for i in range(requests):
        started = time.perf_counter()
        client.predict(api_name="/refreshed") if i % 2 == 0 else client.predict(run_id, api_name="/show")
        latencies.append(time.perf_counter() - started)
    return latencies


def train(home: Path, config: dict, url: str | None, pages: int, every: float) -> dict:
    """Queue one run, let a background worker train it, with `pages` pages polling meanwhile."""
    queued = actions.queue_run(home, actions.RunRequest(config))
    stop, open_pages = threading.Event(), []
    if url is not None:
        for i in range(pages):  # alternate Runs-table pages and Run-detail pages of the live run
            args, api = ((), "/refreshed") if i % 2 == 0 else ((queued.run_id,), "/show")
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
        "status": info.status,
        "s_per_iter_median": statistics.median(per_iteration) if per_iteration else None,
        "latencies": [x for page in open_pages for x in page.latencies],
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
            result["table"]["http_refresh_s"] = statistics.median(refresh_latency(url, 1, 10)[::2])
        finally:
            app.close()
        config = actions.load_preset("tiny_neighbor_grpo") | {"name": "bench-train", "iterations": args.iterations}
        config["eval"] = {**config.get("eval", {}), "every": 0}
        config["checkpoint_every"] = args.iterations
        quiet = train(small, config, None, 0, args.every)
        app, url = serve(small)
        try:
            watched = train(small, config, url, args.pages, args.every)
        finally:
            app.close()
    latencies = watched["latencies"]
    result["refresh"] = {
        "requests": len(latencies),
        "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
        "p95_ms": 1000 * percentile(latencies, 0.95) if latencies else None,
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
    t, f, tr = r["table"], r["refresh"], r["training"]
    rows = [
        ("Runs table: list_runs (SQL + settle)", f"{1000 * t['list_runs_s']:.0f} ms", "< 1 s"),
        ("Runs table: DataFrame for the page", f"{1000 * t['table_dataframe_s']:.0f} ms", "< 1 s"),
        ("Runs table: refresh over HTTP", f"{1000 * t['http_refresh_s']:.0f} ms", "< 1 s"),
        (f"refresh while training, p50 ({f['requests']} requests)", f"{f['p50_ms']:.0f} ms", ""),
        ("refresh while training, p95", f"{f['p95_ms']:.0f} ms", "< 300 ms"),
        ("training s/iter, no page open", f"{tr['s_per_iter_no_pages']:.3f} s", ""),
        (f"training s/iter, {r['settings']['pages']} pages open", f"{tr['s_per_iter_with_pages']:.3f} s", ""),
        ("slowdown from open pages", f"{100 * tr['slowdown']:+.1f} %", "within ±10 %"),
    ]
    s = r["settings"]
    print(
        f"\n{s['runs']} runs, {s['metric_rows']:,} metric rows; load average before {r['machine']['load_average_before']}"
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure':<{width}}  {'value':>10}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")


if __name__ == "__main__":
    sys.exit(main())
