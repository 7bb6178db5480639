"""The render-match gold metric: right on rendered images, and it sees what the checker cannot."""

from __future__ import annotations

import random

import torch

from neighbor_grpo.backend.world import render_match
from neighbor_grpo.backend.world.checker import check_batch
from neighbor_grpo.backend.world.shapes import ShapeSpec, all_specs, render


def test_rendered_images_are_matched_to_their_own_spec():
    specs = random.Random(0).sample(all_specs(), 48)
    images = render(specs, seeds=list(range(100, 148)))
    prompts = [s.prompt for s in specs]
    found = render_match.nearest_renderings(images)
    assert [ShapeSpec(**f) for f in found] == specs
    assert render_match.match_accuracy(images, prompts).tolist() == [1.0] * 48
    assert render_match.render_fit(images, prompts).min() > 0.75


def test_a_wrong_shape_loses_exactly_the_shape_attribute():
    spec = ShapeSpec("square", "red", "blue", "top left")
    image = render([spec], [3])
    prompt = ShapeSpec("triangle", "red", "blue", "top left").prompt
    assert render_match.match_accuracy(image, [prompt]).item() == 0.75
    assert render_match.render_fit(image, [prompt]) < render_match.render_fit(image, [spec.prompt])


def test_streaks_the_checker_ignores_lower_the_render_fit():
    spec = ShapeSpec("triangle", "yellow", "purple", "bottom right")
    clean = render([spec], [7])
    streaked = clean.clone()
    streaked[:, :, 2, :12] = 0.62  # a thin stripe near the top edge, far from the shape
    before, after = check_batch(clean, [spec.prompt])[0], check_batch(streaked, [spec.prompt])[0]
    assert before.accuracy == after.accuracy == 1.0  # the checker's accuracy does not see it
    fit_clean = render_match.render_fit(clean, [spec.prompt]).item()
    fit_streaked = render_match.render_fit(streaked, [spec.prompt]).item()
    assert fit_streaked < fit_clean - 0.05
    assert render_match.match_accuracy(streaked, [spec.prompt]).item() == 1.0


def test_noise_lowers_the_fit_smoothly():
    spec = ShapeSpec("circle", "green", "white", "top right")
    image = render([spec], [1])
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    fits = [render_match.render_fit((image + s * noise).clamp(0, 1), [spec.prompt]).item() for s in (0.0, 0.05, 0.2)]
    assert fits[0] > fits[1] > fits[2]
