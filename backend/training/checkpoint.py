"""Checkpoints: trainable weights, optimizer, LR scheduler, RNG states and step, written atomically.

A checkpoint is a folder `checkpoints/step-NNNNNN/` that appears whole or not at all: it is
written under a temporary name, every file and the folder are fsynced, a manifest of their
sha256 hashes is written last, and only then is it renamed into place. A resume verifies the
manifest and falls back to the newest intact checkpoint, so a torn write (power cut, full disk,
a file damaged later) costs the steps since the previous checkpoint, never the run. Only
safetensors and `torch.load(weights_only=True)` are ever read back.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..files import sha256_file

_PREFIX = "step-"
WEIGHTS = "trainable.safetensors"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
RNG = "rng.pt"
STATE = "state.json"
LORA = "lora.safetensors"
MANIFEST = "manifest.json"  # name → sha256 of every other file; written last
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_LOW_SPACE = 64 * 1024 * 1024  # below this after a failed write, the disk is what ran out


class CheckpointError(OSError):
    """A checkpoint could not be written or read back intact; the message says which and why."""


@dataclass
class RngStates:
    python: random.Random
    generator: torch.Generator

    def capture(self) -> dict:
        states = {
            "python": self.python.getstate(),
            "generator": self.generator.get_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def restore(self, states: dict) -> None:
        self.python.setstate(states["python"])
        self.generator.set_state(states["generator"])
        torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])


def folder_for(root: Path, step: int) -> Path:
    return root / f"{_PREFIX}{step:06d}"


def save_checkpoint(
    root: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict,
    scheduler,
    rng: RngStates,
    state: dict,
    extra_files: dict[str, callable] | None = None,
) -> Path:
    """Write a complete checkpoint for `step`; `optimizer_state` is `optimizer.state_dict()` (or
    the same gathered from shards), `extra_files` maps file names to writer callbacks.

    On a full disk (or any failed write) the partial folder is removed, every earlier checkpoint
    is left as it was, and a CheckpointError says so.
    """
    final = folder_for(root, step)
    temporary = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir(parents=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(temporary / WEIGHTS))
        torch.save(optimizer_state, temporary / OPTIMIZER)
        torch.save(scheduler.state_dict(), temporary / SCHEDULER)
        torch.save(rng.capture(), temporary / RNG)
        (temporary / STATE).write_text(json.dumps({"step": step, **state}, indent=1), encoding="utf-8")
        for name, write in (extra_files or {}).items():
            write(temporary / name)
        _write_manifest(temporary)
    except Exception as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise _write_failure(root, step, error) from error
    _swap_into_place(temporary, final)
    return final


def _write_manifest(folder: Path) -> None:
    hashes = file_hashes(folder)
    (folder / MANIFEST).write_text(json.dumps(hashes, indent=1), encoding="utf-8")
    for name in (*hashes, MANIFEST):
        _fsync_file(folder / name)
    _fsync_dir(folder)


def _swap_into_place(temporary: Path, final: Path) -> None:
    """Rename the finished folder to `final`. A re-save of the same step (e.g. "save now" right
    after a periodic save) moves the old folder aside first and deletes it only after the new one
    is in place; `_restore_set_aside` undoes a crash between the two renames."""
    aside = None
    if final.exists():
        aside = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(temporary, final)
    _fsync_dir(final.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _write_failure(root: Path, step: int, error: Exception) -> Exception:
    intact = [s for s, _ in list_checkpoints(root)]
    kept = f"the previous checkpoint (step {intact[-1]}) is intact" if intact else "no earlier checkpoint exists"
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = None
    full = getattr(error, "errno", None) in _DISK_FULL or (free is not None and free < _LOW_SPACE)
    if full:
        return CheckpointError(
            errno.ENOSPC,
            f"disk full while writing the checkpoint of step {step} in {root} ({_size(free)} free); {kept}. "
            "Free some space, then resume the run",
        )
    return CheckpointError(
        getattr(error, "errno", None) or errno.EIO,
        f"writing the checkpoint of step {step} in {root} failed ({type(error).__name__}: {error}); {kept}",
    )


def _size(free: int | None) -> str:
    return "unknown space" if free is None else f"{free / 2**20:.0f} MiB"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once its folder is synced; Windows cannot open folders for this.
    if os.name == "nt":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _restore_set_aside(root: Path) -> None:
    """A crash between the two renames of a re-save leaves only `.step-N.old-PID`: put it back."""
    for aside in root.glob(f".{_PREFIX}*.old-*"):
        final = root / aside.name[1:].rsplit(".old-", 1)[0]
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    _restore_set_aside(root)
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith(_PREFIX) and (path / STATE).is_file():
            found.append((int(path.name[len(_PREFIX) :]), path))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1][1] if checkpoints else None


def verify_checkpoint(folder: Path) -> str | None:
    """None if every file matches the manifest; else what is wrong. Checkpoints written before
    manifests existed are accepted when their files are all there."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        missing = [name for name in (WEIGHTS, OPTIMIZER, SCHEDULER, RNG, STATE) if not (folder / name).is_file()]
        return f"missing {', '.join(missing)}" if missing else None
    try:
        expected = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "its manifest is unreadable"
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} does not match its recorded sha256"
    return None


def latest_intact_checkpoint(root: Path, log=print) -> Path | None:
    """The newest checkpoint that verifies; damaged newer ones are moved aside (kept, renamed
    `.corrupt-step-N-TIME`) so they are never listed or resumed from again."""
    for step, folder in reversed(list_checkpoints(root)):
        problem = verify_checkpoint(folder)
        if problem is None:
            return folder
        aside = root / f".corrupt-{folder.name}-{int(time.time())}"
        os.replace(folder, aside)
        log(f"checkpoint step {step} is damaged ({problem}); moved to {aside.name}, trying the one before")
    return None


def load_checkpoint(folder: Path, scheduler, rng: RngStates, tensors: bool = True) -> tuple[dict, dict, dict]:
    """Restore scheduler and RNG in place; return (weights, optimizer state, state). With
    `tensors=False` the two large files are not read (a sharded run's other ranks receive them
    from rank 0) and empty dicts stand in for them."""
    weights = load_file(str(folder / WEIGHTS)) if tensors else {}
    optimizer_state = torch.load(folder / OPTIMIZER, weights_only=True) if tensors else {}
    scheduler.load_state_dict(torch.load(folder / SCHEDULER, weights_only=True))
    rng.restore(torch.load(folder / RNG, weights_only=True))
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    return weights, optimizer_state, state


def prune_checkpoints(root: Path, keep: int) -> None:
    for _, path in list_checkpoints(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".step-*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.name: sha256_file(path) for path in sorted(folder.iterdir()) if path.is_file() and path.name != MANIFEST
    }
