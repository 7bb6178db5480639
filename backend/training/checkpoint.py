"""Checkpoints: trainable weights, optimizer, LR scheduler, RNG states and step, written atomically.

A checkpoint is a folder `checkpoints/step-NNNNNN/` that appears whole or not at all: it is
written under a temporary name and renamed. Only safetensors and `torch.load(weights_only=True)`
are ever read back.
"""

from __future__ import annotations

import json
import os
import random
import shutil
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
    optimizer: torch.optim.Optimizer,
    scheduler,
    rng: RngStates,
    state: dict,
    extra_files: dict[str, callable] | None = None,
) -> Path:
    """Write a complete checkpoint for `step`; `extra_files` maps file names to writer callbacks."""
    final = folder_for(root, step)
    temporary = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(temporary / WEIGHTS))
    torch.save(optimizer.state_dict(), temporary / OPTIMIZER)
    torch.save(scheduler.state_dict(), temporary / SCHEDULER)
    torch.save(rng.capture(), temporary / RNG)
    (temporary / STATE).write_text(json.dumps({"step": step, **state}, indent=1), encoding="utf-8")
    for name, write in (extra_files or {}).items():
        write(temporary / name)
    if final.exists():  # a re-save of the same step (e.g. "save now" right after a periodic save)
        shutil.rmtree(final)
    os.replace(temporary, final)
    return final


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith(_PREFIX) and (path / STATE).is_file():
            found.append((int(path.name[len(_PREFIX) :]), path))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1][1] if checkpoints else None


def load_checkpoint(
    folder: Path, optimizer: torch.optim.Optimizer, scheduler, rng: RngStates
) -> tuple[dict[str, torch.Tensor], dict]:
    """Restore optimizer, scheduler and RNG in place; return (weights, state)."""
    weights = load_file(str(folder / WEIGHTS))
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER, weights_only=True))
    scheduler.load_state_dict(torch.load(folder / SCHEDULER, weights_only=True))
    rng.restore(torch.load(folder / RNG, weights_only=True))
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    return weights, state


def prune_checkpoints(root: Path, keep: int) -> None:
    for _, path in list_checkpoints(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".step-*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def file_hashes(folder: Path) -> dict[str, str]:
    return {path.name: sha256_file(path) for path in sorted(folder.iterdir()) if path.is_file()}
