"""SD3 and FLUX adapters sample exactly as diffusers' own pipelines do, from every layout."""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxPipeline, StableDiffusion3Pipeline

from neighbor_grpo.backend import solvers
from neighbor_grpo.backend.models.flux import pack, unpack
from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.sampling import generate, velocity_fn

PROMPTS = ["a red circle on the blue background", "a green square top left"]
STEPS = 4


def pipeline_latents(layouts, noise, guidance):
    """diffusers' pipeline from the same folder, same initial latents, its own Euler scheduler."""
    if layouts.family == "sd3":
        pipe = StableDiffusion3Pipeline.from_pretrained(layouts.diffusers, local_files_only=True)
        out = pipe(PROMPTS, latents=noise, num_inference_steps=STEPS, guidance_scale=guidance, output_type="latent")
        return out.images
    pipe = FluxPipeline.from_pretrained(layouts.diffusers, local_files_only=True)
    size = noise.shape[-1] * 2  # the tiny VAE scales by 2
    out = pipe(
        PROMPTS, latents=pack(noise), num_inference_steps=STEPS, guidance_scale=guidance, output_type="latent",
        height=size, width=size, max_sequence_length=512,
    )  # fmt: skip
    return unpack(out.images, *noise.shape[-2:])


def test_euler_with_the_models_schedule_matches_the_diffusers_pipeline(layouts):
    model = load_model(str(layouts.diffusers))
    guidance = 4.5 if layouts.family == "sd3" else 3.5
    model.guidance = guidance
    noise = model.initial_noise([0, 1], resolution=32)
    sigmas = model.sigmas(STEPS, resolution=32)
    cond = model.encode_prompts(PROMPTS)
    ours = solvers.solve(velocity_fn(model, cond), noise, sigmas, "euler").sample
    expected = pipeline_latents(layouts, noise, guidance)
    assert torch.allclose(ours, expected, atol=1e-4, rtol=1e-4), (ours - expected).abs().max()
    assert (ours - noise).abs().mean() > 0.1  # the comparison is not trivially between two copies of the noise


@pytest.mark.parametrize("solver", solvers.SOLVERS)
def test_every_solver_samples_images(layouts, solver):
    model = load_model(str(layouts.diffusers))
    images = generate(model, PROMPTS, [0, 1], solver=solver, steps=3, resolution=32)
    assert images.shape == (2, 3, 32, 32)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert (images[0] - images[1]).abs().max() > 1e-3


def test_single_files_load_the_same_model_as_the_diffusers_folder(layouts, monkeypatch):
    reference = load_model(str(layouts.diffusers))
    monkeypatch.setenv("COMFYUI_PATH", str(layouts.comfy_root))  # the all-in-one's T5 tokenizer
    x = reference.initial_noise([3], resolution=32)
    sigma = torch.tensor([0.7])
    expected = reference.velocity(x, sigma, reference.encode_prompts(PROMPTS[:1]))
    for spec in (layouts.diffusion_model, layouts.all_in_one):
        model = load_model(str(spec))
        assert model.family == layouts.family
        got = model.velocity(x, sigma, model.encode_prompts(PROMPTS[:1]))
        assert torch.allclose(got, expected, atol=1e-5), (spec, (got - expected).abs().max())
        assert torch.allclose(model.decode(x), reference.decode(x), atol=1e-5)


def test_prompt_encodings_are_cached_per_prompt(layouts):
    model = load_model(str(layouts.diffusers))
    calls = []
    original = model._encode
    model._encode = lambda prompts: calls.append(list(prompts)) or original(prompts)
    first = model.encode_prompts(PROMPTS)
    again = model.encode_prompts([PROMPTS[1], PROMPTS[0], PROMPTS[1]])
    assert len(calls) == 1
    assert torch.equal(again.context[1], first.context[0]) and torch.equal(again.context[0], first.context[1])


def test_flux_schedule_shifts_with_resolution_and_sd3_uses_shift_3(sd3_layouts, flux_layouts):
    flux = load_model(str(flux_layouts.diffusers))
    small, large = flux.sigmas(8, resolution=32), flux.sigmas(8, resolution=1024)
    assert (large[1:-1] > small[1:-1]).all()  # more image tokens, larger μ: more time at high noise
    sd3 = load_model(str(sd3_layouts.diffusers))
    sigmas = sd3.sigmas(8).double()
    unshifted = sigmas / (3 - 2 * sigmas)  # the inverse of σ' = 3σ / (1 + 2σ)
    assert sigmas[-1] == 0 and sigmas[0] == 1
    assert torch.allclose(unshifted[:-1].diff(), unshifted[:-1].diff()[0], atol=1e-6)  # uniform before the shift
