import json

import pytest
import torch

from neighbor_grpo.backend.rewards import ENV_VAR, MissingWeightsError, build_reward, reward_entry
from neighbor_grpo.backend.rewards.options import Options
from neighbor_grpo.backend.rewards.tiny_weights import TINY_OPEN_CLIP, write_open_clip_folder


def _clip(tiny_clip, name="clip", batch_size=None):
    config, weights = tiny_clip
    extra = f" batch_size={batch_size}" if batch_size else ""
    return build_reward(f"{name} arch={config} path={weights}{extra}")


def test_clip_score_is_a_deterministic_cosine_per_image(tiny_clip, shapes_batch):
    images, prompts = shapes_batch
    reward = _clip(tiny_clip)
    first, second = reward.score(images, prompts), _clip(tiny_clip).score(images, prompts)
    assert first.shape == (6,) and first.abs().max() <= 1.0
    assert torch.equal(first, second)
    assert reward.needs_weights and "ngrpo-tiny-clip" in reward.version


def test_clip_score_does_not_depend_on_the_batch_size(tiny_clip, shapes_batch):
    images, prompts = shapes_batch
    whole = _clip(tiny_clip, batch_size=6).score(images, prompts)
    split = _clip(tiny_clip, batch_size=4).score(images, prompts)
    torch.testing.assert_close(whole, split, atol=1e-5, rtol=1e-4)


def test_clip_score_depends_on_the_prompt(tiny_clip, shapes_batch):
    images, prompts = shapes_batch
    reward = _clip(tiny_clip)
    other = ["a white square on a green background, bottom left"] * len(prompts)
    assert not torch.allclose(reward.score(images, prompts), reward.score(images, other))


def test_hps_scores_like_clip_with_its_own_weights_and_version(tiny_clip, shapes_batch):
    images, prompts = shapes_batch
    hps, clip = _clip(tiny_clip, "hpsv2"), _clip(tiny_clip)
    torch.testing.assert_close(hps.score(images, prompts), clip.score(images, prompts))
    assert hps.name == "hpsv2" and hps.version == clip.version


def test_weights_are_found_under_the_env_folder(tmp_path, monkeypatch, shapes_batch):
    write_open_clip_folder(tmp_path / "clip" / "ngrpo-tiny-clip")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    lookup = reward_entry("clip").weights(Options("clip", {"arch": "ngrpo-tiny-clip"}))[0]
    assert lookup.find() == tmp_path / "clip" / "ngrpo-tiny-clip"
    images, prompts = shapes_batch
    assert build_reward("clip arch=ngrpo-tiny-clip").score(images, prompts).shape == (6,)


def test_a_missing_file_is_named_with_the_option_to_fix_it(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(MissingWeightsError, match=f"{missing} does not exist.*path="):
        build_reward(f"clip path={missing}")


def test_weights_of_another_architecture_are_refused_with_a_hint(tiny_clip, tmp_path):
    _, weights = tiny_clip
    wider = dict(TINY_OPEN_CLIP, embed_dim=24)
    (tmp_path / "wider-tiny-clip.json").write_text(json.dumps(wider))
    with pytest.raises(ValueError, match=r"does not fit the model.*of another shape.*option arch"):
        build_reward(f"clip arch={tmp_path / 'wider-tiny-clip.json'} path={weights}")


def test_aesthetic_scores_images_with_the_laion_head_layout(tiny_clip, tiny_aesthetic_head, shapes_batch):
    config, weights = tiny_clip
    text = f"aesthetic clip_arch={config} clip_path={weights} path={tiny_aesthetic_head}"
    images, prompts = shapes_batch
    reward = build_reward(text)
    scores = reward.score(images, prompts)
    assert scores.shape == (6,)
    assert torch.equal(scores, build_reward(text).score(images, prompts))
    torch.testing.assert_close(
        scores, build_reward(text + " batch_size=4").score(images, prompts), atol=1e-5, rtol=1e-4
    )
    # An image reward: the prompt does not matter.
    assert torch.equal(scores, reward.score(images, ["anything"] * 6))


def test_aesthetic_head_of_the_wrong_width_is_refused(tiny_clip, tmp_path):
    from neighbor_grpo.backend.rewards.tiny_weights import write_aesthetic_head

    config, weights = tiny_clip
    head = write_aesthetic_head(tmp_path / "head768.pth", embed_dim=768)
    with pytest.raises(ValueError, match="expects 768-d embeddings"):
        build_reward(f"aesthetic clip_arch={config} clip_path={weights} path={head}")
