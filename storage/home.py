"""Where the registry and the run folders live.

One home folder holds `registry.sqlite`, `runs/<id>-<name>/` and `logs/`. Every front end and the
worker resolve it the same way, so they meet in the same registry without being told twice.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HOME_ENV = "NGRPO_HOME"
RUNS_DIR_ENV = "NGRPO_RUNS_DIR"
APP_NAME = "neighbor-grpo"


def comfy_user_directory() -> Path | None:
    # Only a ComfyUI process has already imported `folder_paths`; importing it ourselves could pick
    # up an unrelated module of that name outside ComfyUI.
    folder_paths = sys.modules.get("folder_paths")
    if folder_paths is None or not hasattr(folder_paths, "get_user_directory"):
        return None
    return Path(folder_paths.get_user_directory())


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """`home` if given, else $NGRPO_HOME, else ComfyUI's user folder, else the user data folder."""
    if home is not None and str(home) != "":
        return Path(home).expanduser().resolve()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser().resolve()
    comfy = comfy_user_directory()
    if comfy is not None:
        return (comfy / APP_NAME).resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)).resolve()


class HomeError(ValueError):
    """The home folder cannot hold a registry; the message says why and how to choose another."""


def check_home(home: Path) -> None:
    """Create `home` if needed and make sure we can write there, or say what is wrong with it."""
    fix = f"set {HOME_ENV} or --home to a folder you can write"
    if home.exists() and not home.is_dir():
        raise HomeError(f"the neighbor-grpo home {home} is a file, not a folder; move it away or {fix}")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HomeError(f"cannot create the neighbor-grpo home {home} ({error.strerror}); {fix}") from None
    probe = home / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise HomeError(f"the neighbor-grpo home {home} is not writable ({error.strerror}); {fix}") from None


def registry_file(home: Path) -> Path:
    return home / "registry.sqlite"


def runs_root(home: Path) -> Path:
    """$NGRPO_RUNS_DIR (shared storage for a shared registry), else `runs/` in the home folder."""
    if os.environ.get(RUNS_DIR_ENV):
        return Path(os.environ[RUNS_DIR_ENV]).expanduser().resolve()
    return home / "runs"


def worker_log(home: Path) -> Path:
    return home / "logs" / "worker.log"


def run_folder_name(run_id: int, name: str) -> str:
    """`0007-my-run`: sorts by id, readable, and safe on every file system."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "run"
    return f"{run_id:04d}-{slug}"
