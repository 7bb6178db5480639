import pytest
import torch

from neighbor_grpo.backend.rewards import Reward, RewardError, RewardSet, RewardSpec, group_zscores


class Recorded(Reward):
    """Returns fixed scores and records the batch sizes it was called with."""

    def __init__(self, name, scores, batch_size):
        self.name, self.scores, self.calls = name, torch.tensor(scores), []
        super().__init__("cpu", batch_size)

    def _score_batch(self, images, prompts):
        start = sum(self.calls)
        self.calls.append(len(prompts))
        return self.scores[start : start + len(prompts)]


def _images(n):
    return torch.rand(n, 3, 8, 8), [""] * n


def test_score_returns_raw_scores_per_reward_split_by_each_batch_size():
    a, b = Recorded("a", [1.0, 2, 3, 4, 5, 6], 4), Recorded("b", [0.0, 0, 1, 1, 2, 2], 5)
    rewards = RewardSet([RewardSpec("a"), RewardSpec("b", 0.5)], [a, b])
    raw = rewards.score(*_images(6))
    assert rewards.names == ["a", "b"] and list(raw) == ["a", "b"]
    assert raw["a"].tolist() == [1, 2, 3, 4, 5, 6] and a.calls == [4, 2] and b.calls == [5, 1]


def test_combine_is_the_weighted_sum_of_per_group_zscores():
    rewards = RewardSet([RewardSpec("a", 2.0), RewardSpec("b", -1.0)], [Recorded("a", [], 8), Recorded("b", [], 8)])
    raw = {"a": torch.tensor([1.0, 3.0, 10.0, 30.0]), "b": torch.tensor([5.0, 5.0, 0.0, 4.0])}
    combined = rewards.combine(raw, group_size=2)
    # a: each group is (−1, +1) whatever its scale; b: flat first group → 0, then (−1, +1).
    assert combined.tolist() == pytest.approx([-2.0, 2.0, -1.0, 1.0])


def test_a_flat_group_gives_zeros_not_nan():
    z = group_zscores(torch.tensor([0.7, 0.7, 0.7, 0.1, 0.2, 0.3]), group_size=3)
    assert torch.isfinite(z).all()
    assert z[:3].tolist() == [0.0, 0.0, 0.0]
    assert z[3:].tolist() == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-4)


def test_combine_refuses_non_finite_scores_naming_the_reward_and_bad_group_sizes():
    rewards = RewardSet([RewardSpec("a"), RewardSpec("b")], [Recorded("a", [], 8), Recorded("b", [], 8)])
    with pytest.raises(RewardError, match="reward 'b' has non-finite"):
        rewards.combine({"a": torch.zeros(4), "b": torch.tensor([0.0, float("inf"), 0, 0])}, group_size=2)
    with pytest.raises(ValueError, match="groups of 3"):
        rewards.combine({"a": torch.zeros(4), "b": torch.zeros(4)}, group_size=3)
    with pytest.raises(ValueError, match=r"no scores for reward\(s\) \['b'\]"):
        rewards.combine({"a": torch.zeros(4)}, group_size=2)


def test_from_specs_builds_from_specs_text_and_dicts_with_unique_keys(shapes_batch):
    rewards = RewardSet.from_specs(
        [
            RewardSpec("shapes_fidelity", 2.0),
            "jpeg_compressibility quality=50",
            {"name": "jpeg_compressibility", "weight": 0.5, "options": {"quality": 90}},
            "sharpness",
            "sharpness",
        ]
    )
    assert rewards.names == [
        "shapes_fidelity",
        "jpeg_compressibility[quality=50]",
        "jpeg_compressibility[quality=90]",
        "sharpness",
        "sharpness#2",
    ]
    assert [spec.weight for spec in rewards.specs] == [2.0, 1.0, 0.5, 1.0, 1.0]
    images, prompts = shapes_batch
    raw = rewards.score(images, prompts)
    assert set(raw) == set(rewards.names) and all(v.shape == (6,) for v in raw.values())
    assert rewards.combine(raw, group_size=3).shape == (6,)
    assert rewards.versions["jpeg_compressibility[quality=50]"] == "1:q50"


def test_a_bad_spec_fails_when_the_set_is_built():
    with pytest.raises(ValueError, match="unknown reward"):
        RewardSet.from_specs(["shapes_fidelity", "nonsense"])


def test_std_floor_keeps_a_nearly_flat_groups_noise_small_and_the_scale_free():
    # Group 1 varies a lot, group 2 barely: plain z-scores blow group 2 up to ±1 like group 1.
    scores = torch.tensor([0.0, 1.0, 0.5, 0.501])
    plain = group_zscores(scores, group_size=2)
    assert plain.tolist() == pytest.approx([-1.0, 1.0, -1.0, 1.0], abs=1e-3)
    floored = group_zscores(scores, group_size=2, std_floor=1.0)
    assert floored[:2].tolist() == pytest.approx([-1.0, 1.0], abs=1e-2)
    assert floored[2:].abs().max() < 0.01
    # The floor is relative to the batch's spread, so the reward's units cancel.
    assert group_zscores(scores * 1000, group_size=2, std_floor=1.0).tolist() == pytest.approx(
        floored.tolist(), abs=1e-4
    )
    with pytest.raises(ValueError, match="std_floor"):
        group_zscores(scores, group_size=2, std_floor=-1)


def test_combine_with_a_std_floor_lets_the_reward_that_varies_decide():
    rewards = RewardSet([RewardSpec("a", 1.0), RewardSpec("b", 1.0)], [Recorded("a", [], 8), Recorded("b", [], 8)])
    # In the second group a varies and b is nearly flat, with its noise ranking the pair the other way.
    raw = {"a": torch.tensor([0.0, 1.0, 0.0, 1.0]), "b": torch.tensor([1.0, 0.0, 0.5001, 0.5])}
    assert rewards.combine(raw, group_size=2)[2:].tolist() == pytest.approx([0.0, 0.0], abs=1e-3)
    floored = rewards.combine(raw, group_size=2, std_floor=1.0)
    assert floored[3] > floored[2] + 1.5
