"""The allowed range of every numeric training setting, checked when a config is loaded or queued.

A value outside its range would either crash minutes into a run (a zero micro-batch, a rank of 0)
or, worse, train silently wrong (a negative gradient clip, a β of 1, an infinite reward weight).
Every number in the config is also required to be finite, including settings added later that
this table does not list yet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

BIG = 10**9  # a sanity ceiling for counts: larger is a typo, not a wish


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False  # True: the value must be strictly above `low`
    high_open: bool = False
    hint: str = ""  # what the setting means or a typical value, for the message

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        left, right = ("(" if self.low_open else "["), (")" if self.high_open else "]")
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


# Dotted setting name → allowed range. Cross-field limits (anchors ≤ group_size, trained steps ≤
# steps) stay in TrainConfig.validate, next to the fields they relate.
RANGES: dict[str, Range] = {
    "iterations": Range(1, BIG),
    "prompts_per_iteration": Range(1, 4096),
    "group_size": Range(2, 4096, hint="GRPO compares samples within a group; the paper uses 12"),
    "seed": Range(0, 2**63 - 1),
    "resolution": Range(8, 8192, hint="pixels per side; leave it unset for the model's own"),
    "checkpoint_every": Range(1, BIG),
    "keep_checkpoints": Range(1, 10_000),
    "neighbor.sigma_p": Range(0, 1, True, True, "the Eq. 7 perturbation; 0.3–0.6 works"),
    "neighbor.steps": Range(1, 1000),
    "neighbor.shift": Range(0, 100, True, hint="σ-schedule shift; unset for the model's"),
    "neighbor.anchors": Range(1, 4096),
    "neighbor.trained_steps": Range(1, 1000),
    "neighbor.tau": Range(0, 1e6, True, hint="softmax temperature of Eq. 8; 1 is the paper's"),
    "neighbor.clip_epsilon": Range(0, 1, True, hint="GRPO ratio clip, e.g. 1e-4 or 0.2"),
    "neighbor.inner_steps": Range(1, 100),
    "neighbor.quasi_norm_p": Range(0, 100, True, hint="Eq. 11 exponent; the paper uses 0.8"),
    "neighbor.kl_beta": Range(0, 1e6, hint="pull toward the base velocity; 0 (the paper) turns it off"),
    "sde.steps": Range(2, 1000),
    "sde.train_fraction": Range(0, 1, True, hint="fraction of the steps trained per sample; DanceGRPO uses 0.6"),
    "sde.eta": Range(0, 10, True, hint="SDE noise level; DanceGRPO uses 0.3"),
    "sde.flow_grpo_a": Range(0, 1, True),
    "sde.shift": Range(0, 100, True),
    "sde.clip_epsilon": Range(0, 1, True),
    "sde.advantage_clip": Range(0, 1e6, True),
    "lora.rank": Range(1, 4096, hint="typical 8–64"),
    "lora.alpha": Range(0, 1e6, True, hint="usually equal to the rank"),
    "optimizer.learning_rate": Range(0, 1, True, hint="1e-3 on the tiny model, 1e-5 on FLUX"),
    "optimizer.weight_decay": Range(0, 10),
    "optimizer.betas[0]": Range(0, 1, high_open=True, hint="Adam β1, typically 0.9"),
    "optimizer.betas[1]": Range(0, 1, high_open=True, hint="Adam β2, typically 0.999"),
    "optimizer.grad_clip": Range(0, 1e9, True, hint="max gradient norm, typically 1.0"),
    "optimizer.warmup_iterations": Range(0, BIG),
    "optimizer.micro_batch": Range(1, 65536),
    "eval.every": Range(0, BIG, hint="0 evaluates only at the start and the end"),
    "eval.seeds_per_prompt": Range(1, 10_000),
    "eval.max_prompts": Range(1, BIG, hint="unset for every evaluation prompt"),
    "eval.gallery_size": Range(0, 10_000),
    "eval.early_stop_patience": Range(0, 10_000, hint="0 turns early stopping off"),
    "eval.early_stop_tolerance": Range(0, 1e9),
    "rewards[].weight": Range(-1e6, 1e6, hint="a finite number; negative weights penalise"),
    "eval.gold[].weight": Range(-1e6, 1e6),
    "eval.monitor[].weight": Range(-1e6, 1e6),
    "eval.steps": Range(1, 1000, hint="unset for the model's default sampler"),
}


def numbers(config: Any, prefix: str = "") -> list[tuple[str, str, float]]:
    """(dotted name, table key, value) of every number in a config dataclass, recursively.

    List items are named `name[i]` and looked up as `name[]` (every item shares one range);
    tuple items (betas) are looked up by position.
    """
    found: list[tuple[str, str, float]] = []

    def visit(value: Any, name: str, key: str) -> None:
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return
        if isinstance(value, (int, float)):
            found.append((name, key, value))
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                joined = f"{name}.{f.name}" if name else f.name
                joined_key = f"{key}.{f.name}" if key else f.name
                visit(getattr(value, f.name), joined, joined_key)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                visit(item, f"{name}[{i}]", f"{key}[{i}]")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, f"{name}[{i}]", f"{key}[]")

    visit(config, prefix, prefix)
    return found


def range_problems(config: Any) -> list[str]:
    """One message per number that is not finite or lies outside its range."""
    problems = []
    for name, key, value in numbers(config):
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name} must be a finite number, got {value}")
            continue
        allowed = RANGES.get(key)
        if allowed is not None and not allowed.contains(value):
            hint = f" ({allowed.hint})" if allowed.hint else ""
            problems.append(f"{name} must be in {allowed.describe()}, got {value}{hint}")
    return problems
