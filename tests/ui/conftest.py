"""The dashboard launched in this process on a free port against a temporary registry, and a
headless Chromium (Debian's, driven by the PyPI playwright package) to use it like a person."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from neighbor_grpo.storage.registry import forget_registries

CHROMIUM = os.environ.get("NGRPO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(url, home) of a live dashboard; closed and its workers' registry forgotten afterwards."""
    from neighbor_grpo.app import build_app, free_port, launch

    home = tmp_path_factory.mktemp("dashboard") / "home"
    app = build_app(home)
    port = free_port("127.0.0.1")
    launch(app, "127.0.0.1", port, None, block=False)
    try:
        yield f"http://127.0.0.1:{port}", home
    finally:
        app.close()
        forget_registries()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or (shutil.which("chromium") is None and CHROMIUM == "/usr/bin/chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (install.py --dev)")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS, timeout=120_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, dashboard):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(dashboard[0])
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: $NGRPO_SCREENSHOTS if set (to refresh docs/images), else a temp folder."""
    folder = Path(os.environ.get("NGRPO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
