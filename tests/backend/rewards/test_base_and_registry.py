import pytest
import torch

from neighbor_grpo.backend.rewards import (
    MissingWeightsError,
    Reward,
    RewardError,
    build_reward,
    reward_entry,
    reward_names,
)


class Counting(Reward):
    name = "counting"
    default_batch_size = 4

    def __init__(self, result=None, **kwargs):
        super().__init__(**kwargs)
        self.result, self.batches = result, []

    def _score_batch(self, images, prompts):
        self.batches.append(len(prompts))
        return self.result if self.result is not None else images.mean(dim=(1, 2, 3))


def test_large_batches_are_split_by_the_reward_batch_size():
    reward = Counting(batch_size=4)
    images = torch.rand(10, 3, 8, 8)
    scores = reward.score(images, [""] * 10)
    assert reward.batches == [4, 4, 2]
    assert torch.allclose(scores, images.mean(dim=(1, 2, 3)))


def test_non_finite_scores_raise_naming_the_reward():
    with pytest.raises(RewardError, match=r"reward 'counting'.*non-finite"):
        Counting(result=torch.tensor([1.0, float("nan")])).score(torch.rand(2, 3, 8, 8), ["", ""])


def test_wrong_length_and_mismatched_prompts_are_refused():
    with pytest.raises(RewardError, match=r"shape \(3,\) for 2 images"):
        Counting(result=torch.zeros(3)).score(torch.rand(2, 3, 8, 8), ["", ""])
    with pytest.raises(RewardError, match="2 images but 1 prompts"):
        Counting().score(torch.rand(2, 3, 8, 8), [""])


def test_unknown_reward_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown reward 'aesthetics'.*shapes_fidelity"):
        build_reward("aesthetics")


def test_every_weight_free_reward_builds_and_scores(shapes_batch):
    images, prompts = shapes_batch
    needs_options = {"colour_target": " target=red", "plugin": None, "remote": None}
    for name in reward_names():
        entry = reward_entry(name)
        if entry.needs_weights or needs_options.get(name, "") is None:
            continue
        reward = build_reward(name + needs_options.get(name, ""))
        scores = reward.score(images, prompts)
        assert scores.shape == (6,) and torch.isfinite(scores).all(), name
        assert reward.version and not reward.needs_weights


@pytest.mark.usefixtures("no_weights_folder")
@pytest.mark.parametrize("name", ["clip", "hpsv2", "hpsv2.1", "aesthetic", "pickscore"])
def test_learned_rewards_without_weights_say_how_to_point_at_them(name):
    with pytest.raises(MissingWeightsError) as error:
        build_reward(name)
    message = str(error.value)
    assert f"reward {name!r}" in message and "NGRPO_REWARD_WEIGHTS" in message and "path=" in message
    assert "Nothing is downloaded" in message
