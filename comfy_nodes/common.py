"""What every node shares: the id prefix, the category, our socket types, and error handling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from comfy_api.latest import io

from ..backend.actions import ActionError

PREFIX = "NGRPO_"
CATEGORY = "Neighbor GRPO"

# Our own socket types: only our nodes connect to them.
PROMPTS = io.Custom("NGRPO_PROMPTS")
REWARDS = io.Custom("NGRPO_REWARDS")
TRAIN_CONFIG = io.Custom("NGRPO_TRAIN_CONFIG")


def node_id(name: str) -> str:
    return PREFIX + name


def validation(check: Callable[..., Any], *args: Any) -> bool | str:
    """`validate_inputs`' answer: True, or the action's message (ComfyUI shows it on the node)."""
    try:
        check(*args)
    except (ActionError, ValueError) as error:
        return str(error)
    return True
