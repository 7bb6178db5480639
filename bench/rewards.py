"""Images per second of every reward on the CPU, at one batch size (default 12).

Weight-free rewards run as shipped; learned ones run with tiny random-weight models written to a
temporary folder (labelled "tiny random": they time the plumbing, not a real ViT-L/H); the remote
reward runs against a brightness server on 127.0.0.1 (labelled "local server": HTTP + PNG cost).

    python bench/rewards.py [--batch 12] [--size 32] [--seconds 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from neighbor_grpo.backend.rewards import build_reward, reward_entry, reward_names
from neighbor_grpo.backend.rewards import tiny_weights as tiny
from neighbor_grpo.backend.rewards.remote import decode_png
from neighbor_grpo.backend.world.shapes import random_specs, render


class _BrightnessServer(BaseHTTPRequestHandler):
    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"scores": [decode_png(i).mean().item() for i in payload["images"]]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _specs(folder: Path, server_url: str) -> list[tuple[str, str, str]]:
    """(label, spec text, kind) for every reward."""
    config, weights = tiny.write_open_clip(folder / "clip")
    head = tiny.write_aesthetic_head(folder / "aesthetic.pth")
    pick = tiny.write_pickscore_folder(folder / "pickscore")
    plugin = folder / "plugin_reward.py"
    plugin.write_text("def score(images, prompts):\n    return images.mean(dim=(1, 2, 3))\n")
    learned = {
        "clip": f"clip arch={config} path={weights}",
        "hpsv2": f"hpsv2 arch={config} path={weights}",
        "hpsv2.1": f"hpsv2.1 arch={config} path={weights}",
        "aesthetic": f"aesthetic clip_arch={config} clip_path={weights} path={head}",
        "pickscore": f"pickscore path={pick}",
    }
    special = {
        "colour_target": ("colour_target target=red", "weight-free"),
        "plugin": (f"plugin target={plugin}:score", "plugin (mean pixel)"),
        "remote": (f"remote url={server_url}", "local server"),
    }
    rows = []
    for name in reward_names():
        if name in learned:
            rows.append((name, learned[name], "tiny random"))
        elif name in special:
            rows.append((name, *special[name]))
        elif not reward_entry(name).needs_weights:
            rows.append((name, name, "weight-free"))
    return rows


def _time(text: str, images: torch.Tensor, prompts: list[str], seconds: float) -> float:
    """Seconds per call of `score` on this batch, after one warm-up call."""
    reward = build_reward(text)
    reward.score(images, prompts)  # warm-up: lazy imports, first-call allocations
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        reward.score(images, prompts)
        calls += 1
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (shapes world: 32)")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per reward")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    import random

    specs = random_specs(args.batch, random.Random(0))
    images, prompts = render(specs, size=args.size), [spec.prompt for spec in specs]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BrightnessServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, text, kind in _specs(Path(folder), f"http://127.0.0.1:{httpd.server_address[1]}/"):
            per_call = _time(text, images, prompts, args.seconds)
            results.append(
                {"reward": name, "kind": kind, "ms_per_batch": per_call * 1000, "images_per_s": args.batch / per_call}
            )
            print(f"{name:<24} {kind:<20} {per_call * 1000:9.2f} ms/batch {args.batch / per_call:10.1f} img/s")
    httpd.shutdown()

    setup = {"batch": args.batch, "size": args.size, "threads": torch.get_num_threads(), "cpu": platform.processor()}
    print(f"\n| reward | kind | ms / batch of {args.batch} | images/s |\n|---|---|---:|---:|")
    for row in results:
        print(f"| {row['reward']} | {row['kind']} | {row['ms_per_batch']:.2f} | {row['images_per_s']:.0f} |")
    print(f"\n{args.size}×{args.size} images, batch {args.batch}, {setup['threads']} torch thread(s), CPU")
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "results": results}, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
