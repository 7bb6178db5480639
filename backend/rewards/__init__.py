"""Rewards: images [B, 3, H, W] in 0..1 and prompts → scores [B], higher is better.

Build them from `RewardSpec`s through the registry; combine several with `RewardSet`. See
docs/rewards.md for the catalogue, where learned rewards find their weights, plugins and the
remote protocol.
"""

from .base import Reward, RewardError
from .multi import RewardSet, group_zscores
from .registry import RewardEntry, build_reward, check_spec, register_reward, reward_entry, reward_names
from .spec import RewardSpec
from .weights import ENV_VAR, MissingWeightsError

__all__ = [
    "ENV_VAR",
    "MissingWeightsError",
    "Reward",
    "RewardEntry",
    "RewardError",
    "RewardSet",
    "RewardSpec",
    "build_reward",
    "check_spec",
    "group_zscores",
    "register_reward",
    "reward_entry",
    "reward_names",
]
