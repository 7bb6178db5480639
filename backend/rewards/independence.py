"""The gold-metric rule: a gold metric may not be a training reward or a transform of one.

Gold metrics exist to catch reward hacking; one that is computed from the same measurement as a
training reward rises and falls with it and catches nothing. Specs are compared in full — the
measurement behind the name (`RewardEntry.signal`: the shapes checker's fidelity, accuracy,
cleanliness and per-attribute scores are one) and every option except the batch size — never by
name alone: `clip arch=ViT-B-32` is independent of `clip arch=ViT-L-14`, while `shapes_accuracy`
(a thresholded shapes_fidelity) is not independent of `shapes_fidelity`, and a weight is only a
rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence

from .registry import COMMON_OPTIONS, reward_entry
from .spec import RewardSpec


def signal_of(spec: RewardSpec) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """What a spec measures, or None for a name no reward is registered under (reported elsewhere)."""
    try:
        entry = reward_entry(spec.name)
    except ValueError:
        return None
    options = tuple(sorted((key, str(value)) for key, value in spec.options.items() if key not in COMMON_OPTIONS))
    return (entry.signal or entry.name, options)


def dependent_pairs(rewards: Sequence[RewardSpec], gold: Sequence[RewardSpec]) -> list[tuple[RewardSpec, RewardSpec]]:
    """(gold, training reward) pairs that measure the same thing."""
    signals = [(reward, signal_of(reward)) for reward in rewards]
    pairs = []
    for candidate in gold:
        mine = signal_of(candidate)
        pairs += [(candidate, reward) for reward, theirs in signals if mine is not None and mine == theirs]
    return pairs


def check_gold_independent(rewards: Sequence[RewardSpec], gold: Sequence[RewardSpec]) -> None:
    """ValueError naming the first gold metric that is a training reward or a transform of one."""
    pairs = dependent_pairs(rewards, gold)
    if not pairs:
        return
    candidate, reward = pairs[0]
    signal = signal_of(reward)[0]
    raise ValueError(
        f"eval.gold {candidate.to_text()!r} is not independent of the training reward {reward.to_text()!r} "
        f"(both are read off the {signal!r} measurement): a gold metric may not be a training reward or "
        "a transform of one, or it rises with the reward it should police. Move it to eval.monitor, and "
        "pick a gold metric the run does not train on (for the shapes world: shapes_render_match, "
        "shapes_render_fit)"
    )
