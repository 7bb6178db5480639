import pytest
import torch

from neighbor_grpo.backend.rewards import MissingWeightsError, build_reward


def test_pickscore_from_a_local_transformers_folder(tiny_pickscore, shapes_batch):
    images, prompts = shapes_batch
    reward = build_reward(f"pickscore path={tiny_pickscore}")
    scores = reward.score(images, prompts)
    assert scores.shape == (6,) and torch.isfinite(scores).all()
    assert torch.equal(scores, build_reward(f"pickscore path={tiny_pickscore}").score(images, prompts))
    split = build_reward(f"pickscore path={tiny_pickscore} batch_size=4").score(images, prompts)
    torch.testing.assert_close(scores, split, atol=1e-4, rtol=1e-4)
    other = ["a white square on a green background, bottom left"] * 6
    assert not torch.allclose(scores, reward.score(images, other))


def test_pickscore_folder_without_config_is_refused(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"has no config\.json"):
        build_reward(f"pickscore path={tmp_path}")
