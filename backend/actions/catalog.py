"""What a user can choose from: models, prompt sets and rewards, with whether each is usable."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...storage.prompt_sets import list_prompt_sets as registry_prompt_sets
from ..models.registry import ModelInfo
from ..models.registry import list_models as registry_models
from .errors import action
from .prompts import BUILTIN_SETS, resolve_prompt_source

Home = str | os.PathLike | None


def list_models() -> list[ModelInfo]:
    """Every registered model (the embedded one, local SD3/FLUX, ComfyUI's folders), with
    `available` telling whether its weights were found and `detail` where, or how to get them."""
    return registry_models()


@dataclass(frozen=True)
class PromptSetInfo:
    name: str  # what a config's `prompts:` takes
    source: str  # "built-in" or "saved"
    count: int
    preview: list[str]  # the first few prompts


@action
def list_prompt_sets(home: Home = None, preview: int = 3) -> list[PromptSetInfo]:
    """Built-in sets first, then the sets saved in the registry."""
    infos = []
    for name in BUILTIN_SETS:
        prompts = resolve_prompt_source(home, name)
        infos.append(PromptSetInfo(name, "built-in", len(prompts), prompts[:preview]))
    for name in registry_prompt_sets(home):
        prompts = resolve_prompt_source(home, name)
        infos.append(PromptSetInfo(name, "saved", len(prompts), prompts[:preview]))
    return infos


@dataclass(frozen=True)
class RewardInfo:
    name: str
    version: str
    description: str
    options: tuple[str, ...]  # what `options:` it accepts ("*": anything, passed to a plugin)
    needs_weights: bool
    available: bool  # usable as is: needs no weights, or all its default weights files were found
    files: list[str]  # for learned rewards: each weights file found, or what is missing


def _weights_status(entry) -> tuple[bool, list[str]]:
    from ..rewards.options import Options

    if not entry.needs_weights:
        return True, []
    lookups = entry.weights(Options(entry.name, {}))
    found = [lookup.find() for lookup in lookups]
    files = [str(path) if path else f"{lookup.what}: not found" for lookup, path in zip(lookups, found, strict=True)]
    return all(found), files


def plugin_status() -> str:
    """One line: whether reward plugins (code the user wrote) may load here, and how to opt in."""
    from ..rewards.plugin import plugin_status as status

    return status()


def list_rewards() -> list[RewardInfo]:
    """Every registered reward (built-ins, learned ones, plugins), by name."""
    from ..rewards import reward_entry, reward_names

    infos = []
    for name in reward_names():
        entry = reward_entry(name)
        available, files = _weights_status(entry)
        infos.append(
            RewardInfo(name, entry.version, entry.description, entry.options, entry.needs_weights, available, files)
        )
    return infos
