import torch

from neighbor_grpo.backend.rewards import RewardSet, build_reward
from neighbor_grpo.backend.world.shapes import ShapeSpec, render

PROMPT = "a red circle on a blue background, top left"


def _pair():
    right = render([ShapeSpec("circle", "red", "blue", "top left")], seeds=[0])
    wrong_colour = render([ShapeSpec("circle", "green", "blue", "top left")], seeds=[0])
    return torch.cat([right, wrong_colour]), [PROMPT, PROMPT]


def test_fidelity_ranks_the_correct_image_above_a_wrong_colour():
    images, prompts = _pair()
    scores = build_reward("shapes_fidelity").score(images, prompts)
    assert scores.shape == (2,) and scores.dtype == torch.float32
    assert scores[0] > scores[1]
    assert scores.min() >= 0.0 and scores.max() <= 1.0


def test_accuracy_counts_exact_attributes():
    images, prompts = _pair()
    assert build_reward("shapes_accuracy").score(images, prompts).tolist() == [1.0, 0.75]


def test_attribute_rewards_blame_only_the_wrong_attribute():
    images, prompts = _pair()
    rewards = RewardSet.from_specs(["shapes_colour", "shapes_shape", "shapes_position", "shapes_background"])
    raw = rewards.score(images, prompts)
    assert raw["shapes_colour"][0] > 0.9 > 0.1 > raw["shapes_colour"][1]
    for key in ("shapes_shape", "shapes_position", "shapes_background"):
        assert (raw[key] > 0.9).all(), key
