"""Screenshot an example workflow in a real ComfyUI page, after running it (for the README).

    python tests/comfy_nodes/screenshot_example.py [--no-run] [--out docs/images/comfyui_example.png]

Needs `apt-get install -y chromium` and the PyPI `playwright` package (never `playwright install`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def wait_until(page, condition: str, seconds: float) -> None:
    """Poll a page expression from Python (page.wait_for_function timed out on a true one here)."""
    for _ in range(int(seconds * 2)):
        if page.evaluate(f"() => {condition}"):
            return
        page.wait_for_timeout(500)
    raise TimeoutError(f"the page never satisfied: {condition}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", default="tiny_train_status_compare")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "comfyui_example.png")
    parser.add_argument("--no-run", action="store_true", help="only load the graph, do not queue it")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from comfyui_harness import ComfyServer, prepare
    from playwright.sync_api import sync_playwright

    workflow = json.loads((REPO / "example_workflows" / f"{args.workflow}.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as base:
        for folder in ("custom_nodes", "user", "models/loras"):
            (Path(base) / folder).mkdir(parents=True)
        (Path(base) / "custom_nodes" / "neighbor_grpo").symlink_to(REPO, target_is_directory=True)
        # A first visit opens the template browser and a tour; a returning user's settings do not.
        settings = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}
        (Path(base) / "user" / "default").mkdir()
        (Path(base) / "user" / "default" / "comfy.settings.json").write_text(json.dumps(settings))
        server = ComfyServer(prepare(), Path(base), env={"NGRPO_HOME": str(Path(base) / "home")})
        try:
            server.wait_ready()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1960, "height": 800})
                page.goto(server.url, wait_until="networkidle")
                # The page registers node types from /object_info some time after it appears.
                wait_until(
                    page,
                    "!!(window.app && window.app.graph && window.LiteGraph"
                    " && window.LiteGraph.registered_node_types['NGRPO_RunStatus'])",
                    120,
                )
                page.keyboard.press("Escape")
                page.evaluate("async (graph) => { await window.app.loadGraphData(graph); }", workflow)
                page.wait_for_timeout(1500)
                if not args.no_run:
                    page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
                    page.wait_for_timeout(3000)
                    for _ in range(1800):  # the run trains in a worker; the graph waits for it
                        queue = server.get("/queue")
                        if not queue["queue_running"] and not queue["queue_pending"]:
                            break
                        page.wait_for_timeout(500)
                    page.wait_for_timeout(2000)
                # Fit the whole graph in view, hide the page's announcement banner, then screenshot.
                page.evaluate(
                    "() => { const c = window.app.canvas; c.ds.scale = 0.86; c.ds.offset = [70, 110];"
                    " c.setDirty(true, true); for (const e of document.querySelectorAll('div'))"
                    " if (e.children.length < 6 && /Introducing Nodes/.test(e.textContent) && e.offsetHeight < 60)"
                    " e.style.display = 'none'; }"
                )
                page.wait_for_timeout(800)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
