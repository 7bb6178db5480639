"""The repository root installs and loads like a well-kept ComfyUI pack, and stays a light Python
package outside ComfyUI."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import neighbor_grpo

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_package_does_not_import_comfyui():
    code = "import sys, neighbor_grpo; print(sorted(m for m in sys.modules if m.startswith(('comfy', 'torch'))))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


def test_the_v3_entrypoint_is_an_async_function():
    assert inspect.iscoroutinefunction(neighbor_grpo.comfy_entrypoint)
    assert not hasattr(neighbor_grpo, "NODE_CLASS_MAPPINGS"), "ComfyUI would register only V1 mappings"


def test_pyproject_has_what_the_comfy_registry_reads():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project, comfy = config["project"], config["tool"]["comfy"]
    assert "comfyui" not in project["name"].lower()
    assert project["version"].count(".") == 2 and project["urls"]["Repository"].startswith("https://")
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= set(comfy)
    icon = comfy["Icon"].rsplit("/main/", 1)[1]
    assert (REPO / icon).is_file(), "the icon URL must point at a file of this repository"


def test_requirements_never_ask_for_torch():
    names = [line.split("#")[0].strip().split(">")[0].split("=")[0].split("<")[0].lower()
             for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()]  # fmt: skip
    assert not {"torch", "torchvision", "torchaudio"} & set(names)


def test_a_worker_starts_from_the_pack_as_comfyui_imports_it(tmp_path):
    """ComfyUI names the package after its folder's path (dots replaced); the worker command built
    there must still reach our CLI, whatever the folder is called."""
    folder = tmp_path / "custom_nodes" / "neighbor-grpo.git"
    folder.parent.mkdir()
    folder.symlink_to(REPO, target_is_directory=True)
    code = f"""
import importlib, importlib.util, subprocess, sys
name = {str(folder)!r}.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, {str(folder / "__init__.py")!r})
module = importlib.util.module_from_spec(spec); sys.modules[name] = module; spec.loader.exec_module(module)
workers = importlib.import_module(name + ".storage.workers")
command, env = workers.worker_command({str(tmp_path / "home")!r})
assert command[-3:] == ["--home", {str(tmp_path / "home")!r}, "--exit-when-idle"], command
cut = command.index("worker")
sys.exit(subprocess.run(command[:cut] + ["worker", "--help"], env=env).returncode)
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--exit-when-idle" in result.stdout


def test_example_workflows_are_ui_format_graphs():
    import json

    examples = sorted((REPO / "example_workflows").glob("*.json"))
    assert {path.stem for path in examples} >= {"tiny_train_status_compare", "sd3_lora_vs_base"}
    for path in examples:
        graph = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(graph.get("nodes"), list) and isinstance(graph.get("links"), list), path.name
