"""What a run recorded, for reading: curves (downsampled in SQL), evaluation images grouped by
prompt, its config and its error text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...storage import history, runs
from .errors import action

Home = str | os.PathLike | None
RunRef = int | str

# The curves a run page shows first; every other metric is available by name.
MAIN_CURVES = (
    "reward", "eval/reward", "eval/gold", "loss", "clip_fraction", "flat_group_fraction", "s_per_iter",
)  # fmt: skip


@action
def run_curves(
    home: Home, run: RunRef, names: list[str] | None = None, max_points: int = 300
) -> dict[str, list[tuple[int, float]]]:
    """metric name → [(step, value)], at most about `max_points` steps per metric (every k-th
    step, chosen in SQL, so a long run's page stays light). All metrics when `names` is None."""
    return history.metric_series(home, run, names, max_points=max_points)


@dataclass(frozen=True)
class SampleImage:
    path: Path  # absolute, inside the run folder
    seed: int
    scores: dict[str, float]


@dataclass(frozen=True)
class SampleGroup:
    """The images of one prompt at one step, on different seeds: shown side by side, collapsed
    diversity and reward hacking are visible at a glance."""

    prompt: str
    images: list[SampleImage]


@dataclass(frozen=True)
class Gallery:
    step: int | None  # None: the run has no evaluation images yet
    steps: list[int]  # every step that has images, oldest first
    groups: list[SampleGroup]


@action
def run_gallery(home: Home, run: RunRef, step: int | None = None) -> Gallery:
    """The evaluation images of `step` (default: the newest), grouped by prompt in the order the
    evaluation made them."""
    steps = history.sample_steps(home, run)
    if step is None and not steps:
        return Gallery(None, [], [])
    if step is not None and step not in steps:
        raise ValueError(f"no evaluation images at step {step}; steps with images: {steps or 'none yet'}")
    shown = steps[-1] if step is None else step
    groups: dict[str, list[SampleImage]] = {}
    for sample in history.list_samples(home, run, shown):
        groups.setdefault(sample.prompt, []).append(SampleImage(sample.path, sample.seed, sample.scores))
    return Gallery(shown, steps, [SampleGroup(prompt, images) for prompt, images in groups.items()])


@action
def run_config(home: Home, run: RunRef) -> dict[str, Any]:
    """The full config the worker trains (defaults filled in, prompt files frozen to lists)."""
    return runs.get_run(home, run).config


@action
def run_error(home: Home, run: RunRef) -> str | None:
    """Why a run failed: the whole traceback (error.txt) when there is one, else the one-line
    reason (also for interrupted or early-stopped runs); None when there is nothing to say."""
    info = runs.get_run(home, run)
    full = info.folder / "error.txt"
    if info.status == "failed" and full.is_file():
        return full.read_text(encoding="utf-8")
    return info.error
