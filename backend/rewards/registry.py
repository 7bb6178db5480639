"""Reward names → builders. Every front end and the trainer build rewards here, from a RewardSpec.

The built-in catalogue registers itself on first use; a project can add its own with
`register_reward` (or, without code changes, use the `plugin` reward).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .base import Reward
from .options import Options
from .spec import RewardSpec
from .weights import WeightsLookup

# Options every reward accepts; `batch_size` bounds how many images it sees at once.
COMMON_OPTIONS = ("batch_size",)
ANY_OPTION = "*"  # in RewardEntry.options: accept any option (a plugin passes them on)
_CATALOGUE = ("fidelity", "render_match", "image_stats", "clip_models", "pickscore", "plugin", "remote")


@dataclass(frozen=True)
class RewardEntry:
    name: str
    version: str
    description: str
    build: Callable[[Options, torch.device], Reward]
    options: tuple[str, ...] = ()
    needs_weights: bool = False
    # The files this reward would read with these options (for `ngrpo rewards` and early checks).
    weights: Callable[[Options], list[WeightsLookup]] = field(default=lambda options: [])
    # Extra checks before a run is queued (raises with the fix), e.g. the plugin opt-in.
    check: Callable[[Options], None] | None = None
    # What the reward measures, for the gold-metric rule (independence.py): rewards that are
    # read off one measurement (the shapes checker's attribute scores, say) share a signal.
    # None = its own name.
    signal: str | None = None


_ENTRIES: dict[str, RewardEntry] = {}
_loaded = False


def register_reward(entry: RewardEntry) -> None:
    _ENTRIES[entry.name] = entry


def _entries() -> dict[str, RewardEntry]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _CATALOGUE:
            importlib.import_module(f"{__package__}.{module}")
    return _ENTRIES


def reward_names() -> list[str]:
    return sorted(_entries())


def reward_entry(name: str) -> RewardEntry:
    entries = _entries()
    if name not in entries:
        raise ValueError(
            f"unknown reward {name!r}; available: {', '.join(sorted(entries))} "
            '(your own code: --reward "plugin target=file.py:function"; a server: --reward "remote url=...")'
        )
    return entries[name]


def spec_options(spec: RewardSpec) -> Options:
    """The spec's options, checked against what its reward accepts."""
    entry = reward_entry(spec.name)
    allowed = (*entry.options, *COMMON_OPTIONS)
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown and ANY_OPTION not in entry.options:
        raise ValueError(f"reward {spec.name!r} has no option(s) {unknown}; it accepts: {', '.join(allowed)}")
    return Options(spec.name, spec.options)


def check_spec(spec: RewardSpec) -> None:
    """Fail before a run is created, not minutes into it: an unknown reward or option, or a
    weights file that is not where the spec says (checks files only; loads nothing)."""
    options = spec_options(spec)
    entry = reward_entry(spec.name)
    if entry.check is not None:
        entry.check(options)
    for lookup in entry.weights(options):
        lookup.require()


def build_reward(spec: RewardSpec | str, device: str | torch.device = "cpu") -> Reward:
    """A ready reward for `spec` on `device` (weights loaded, evaluation mode)."""
    spec = RewardSpec.parse(spec) if isinstance(spec, str) else spec
    options = spec_options(spec)
    return reward_entry(spec.name).build(options, torch.device(device))
