"""A real wheel (not the editable install) holds everything `ngrpo` needs: it is built from a copy
of the repository, installed into a scratch folder, and samples from the embedded model in a
folder far from the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a fresh clone would not have; building in a copy keeps build/ and *.egg-info out of the
# working tree and lets this run beside other tests.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache", ".ruff_cache",
    ".comfyui", ".whl", ".gl", "runs", "out", "tests",
)  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "neighbor-grpo"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(out), "-q"],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("neighbor_grpo-*.whl")
    return built


def test_the_wheel_holds_code_model_configs_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "neighbor_grpo/__init__.py",
        "neighbor_grpo/backend/cli.py",
        "neighbor_grpo/backend/actions/__init__.py",
        "neighbor_grpo/weights/tiny/model.safetensors",
        "neighbor_grpo/weights/tiny/config.json",
        "neighbor_grpo/configs/tiny_neighbor_grpo.yaml",
        "neighbor_grpo/storage/migrations/script.py.mako",
        "neighbor_grpo/storage/migrations/versions/0001_initial.py",
    ):
        assert needed in names, needed
    # Every folder of code in the repository ships, without anyone listing it.
    for folder in ROOT.iterdir():
        if folder.is_dir() and (folder / "__init__.py").is_file() and folder.name not in ("tests", "bench"):
            assert f"neighbor_grpo/{folder.name}/__init__.py" in names, folder.name
    assert not any(name.startswith(("neighbor_grpo/tests/", "neighbor_grpo/bench/")) for name in names)


def test_an_installed_wheel_samples_from_the_embedded_model(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel), "-q"], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy is importable as neighbor_grpo (no repository, no shim).
    env = {**os.environ, "PYTHONPATH": str(target), "NGRPO_HOME": str(tmp_path / "home")}
    found = subprocess.run(
        [sys.executable, "-c", "import neighbor_grpo; print(neighbor_grpo.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(found.stdout.strip()).is_relative_to(target)
    script = target / "bin" / "ngrpo"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "neighbor_grpo"]
    result = subprocess.run(
        [*command, "sample", "--prompt", "a red circle on a blue background, top left", "--out", "grid.png"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "grid.png").stat().st_size > 100
