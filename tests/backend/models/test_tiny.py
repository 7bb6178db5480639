"""The embedded tiny model: a working FlowModel, saved and loaded exactly, shipped and accurate."""

from __future__ import annotations

import pytest
import torch

from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.models.tiny import WEIGHTS_DIR, TinyConfig, TinyFlowModel
from neighbor_grpo.backend.sampling import generate
from neighbor_grpo.backend.world import checker, shapes


@pytest.fixture(scope="module")
def random_tiny() -> TinyFlowModel:
    torch.manual_seed(0)
    return TinyFlowModel(TinyConfig(num_layers=1)).eval()


def test_latents_round_trip_images_exactly(random_tiny):
    images = shapes.render(shapes.all_specs()[:4])
    latents = random_tiny.encode_images(images)
    assert latents.shape == (4, 12, 16, 16) == random_tiny.noise_shape(4)
    assert torch.allclose(random_tiny.decode(latents), images, atol=1e-6)


def test_save_then_load_gives_identical_velocities(random_tiny, tmp_path):
    random_tiny.save(tmp_path)
    loaded = TinyFlowModel.load(tmp_path)
    x = torch.randn(3, 12, 16, 16, generator=torch.Generator().manual_seed(1))
    prompts = shapes.test_prompts()[:3]
    sigma = torch.tensor([0.9, 0.5, 0.1])
    with torch.no_grad():
        a = random_tiny.velocity(x, sigma, random_tiny.encode_prompts(prompts))
        b = loaded.velocity(x, sigma, loaded.encode_prompts(prompts))
    assert torch.equal(a, b)


def test_word_order_reaches_the_model(random_tiny):
    """Swapping the shape and background colours must change the conditioning."""
    with torch.no_grad():
        cond = random_tiny.encode_prompts(
            ["a red circle on a blue background, top left", "a blue circle on a red background, top left"]
        )
    assert not torch.allclose(cond.context[0], cond.context[1], atol=1e-4)


def test_batch_items_match_single_samples(random_tiny):
    prompts, seeds = shapes.test_prompts()[:3], [4, 5, 6]
    batch = generate(random_tiny, prompts, seeds, steps=3)
    singles = torch.cat([generate(random_tiny, [p], [s], steps=3) for p, s in zip(prompts, seeds, strict=True)])
    assert torch.allclose(batch, singles, atol=1e-5)


def test_missing_weights_say_where_and_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="ngrpo pretrain-tiny"):
        TinyFlowModel.load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown model 'sdxl'; available: tiny"):
        load_model("sdxl")


@pytest.mark.slow
def test_shipped_model_draws_what_held_out_prompts_ask_for():
    assert (WEIGHTS_DIR / "model.safetensors").stat().st_size < 20 * 2**20
    model = load_model("tiny")
    prompts = shapes.test_prompts()[:30]
    images = generate(model, prompts, list(range(len(prompts))), solver="dpmpp2m", steps=8)
    summary = checker.attribute_accuracy(checker.check_batch(images, prompts))
    # Far above chance (colour 1/6, background 1/5, shape 1/3, position 1/4 → mean ≈ 0.24).
    assert summary["mean"] > 0.6, summary
    assert summary["colour"] > 0.7 and summary["position"] > 0.7, summary
