"""One real ComfyUI per test session, with this pack and the test helper pack loaded.

It runs from .comfyui/ (prepared by `python tests/comfy_nodes/comfyui_harness.py`, which .ci/run
calls) or from NGRPO_COMFYUI_DIR. Everything it writes — models, outputs, the run registry — goes
to a temporary base folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _load(file: str, name: str):
    # Tests run in importlib mode: helper modules beside them are loaded by path.
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load("comfyui_harness.py", "ngrpo_comfyui_harness")
workflow_format_module = _load("workflow_format.py", "ngrpo_workflow_format")


@pytest.fixture(scope="session")
def workflow_format():
    return workflow_format_module


@pytest.fixture(scope="session")
def comfyui_base(tmp_path_factory) -> Path:
    """ComfyUI's base folder: custom_nodes/ links this pack (under its usual folder name) and the
    test helper pack; models/, output/ and user/ start empty."""
    base = tmp_path_factory.mktemp("comfyui-base")
    nodes = base / "custom_nodes"
    nodes.mkdir()
    (nodes / "neighbor_grpo").symlink_to(REPO, target_is_directory=True)
    (nodes / "ngrpo_test_helpers").symlink_to(HERE / "helper_pack", target_is_directory=True)
    for folder in ("models/diffusion_models", "models/loras", "user", "output", "input"):
        (base / folder).mkdir(parents=True)
    return base


@pytest.fixture(scope="session")
def comfyui_home(tmp_path_factory) -> Path:
    """The run registry the ComfyUI process (and the workers it starts) uses."""
    return tmp_path_factory.mktemp("comfyui-ngrpo-home")


@pytest.fixture(scope="session")
def comfyui(comfyui_base, comfyui_home):
    folder = harness.comfyui_dir()
    if not (folder / "main.py").is_file():
        pytest.skip(
            f"no ComfyUI at {folder}: run `python tests/comfy_nodes/comfyui_harness.py` (needs PyPI) "
            "or set NGRPO_COMFYUI_DIR to a ComfyUI checkout"
        )
    server = harness.ComfyServer(folder, comfyui_base, env={"NGRPO_HOME": str(comfyui_home)})
    try:
        server.object_info = server.wait_ready()
        yield server
    finally:
        server.stop()
        stop_workers(comfyui_home)


def stop_workers(home: Path) -> None:
    """End the workers ComfyUI started for our runs (they hold the lock of workers/<device>.lock)."""
    from neighbor_grpo.storage.workers import WorkerLock

    for lock in (home / "workers").glob("*.lock"):
        probe = WorkerLock(lock)
        if probe.acquire():  # nobody holds it: no worker alive
            probe.release()
            continue
        pid = lock.read_text().strip()
        if pid.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)


def pack_import_failures(log: str) -> list[str]:
    """Lines where ComfyUI reports that one of our packs failed to import."""
    return [
        line
        for line in log.splitlines()
        if re.search(r"IMPORT FAILED|Cannot import|Error while calling comfy_entrypoint", line)
        and re.search(r"neighbor_grpo|ngrpo_test_helpers", line)
    ]


@pytest.fixture
def clean_log(comfyui):
    """Yields; afterwards fails if ComfyUI logged a LoRA key it could not load, or a pack error."""
    start = len(comfyui.log())
    yield
    new = comfyui.log()[start:]
    assert "lora key not loaded" not in new, new[-3000:]
    assert not pack_import_failures(comfyui.log())
