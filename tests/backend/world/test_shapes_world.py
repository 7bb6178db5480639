"""The shapes world renders what prompts say, and its checker can tell."""

from __future__ import annotations

import pytest
import torch

from neighbor_grpo.backend.world import checker, shapes


def test_prompts_round_trip_and_splits_are_fixed_and_disjoint():
    specs = shapes.all_specs()
    assert len(specs) == 360
    assert all(shapes.ShapeSpec.parse(s.prompt) == s for s in specs)
    train, test = shapes.prompt_splits()
    assert len(test) == shapes.HELD_OUT_COUNT and len(train) == 300
    assert not set(train) & set(test)
    assert (train, test) == shapes.prompt_splits()


def test_bad_prompts_name_the_problem():
    with pytest.raises(ValueError, match="not a shapes-world prompt"):
        shapes.ShapeSpec.parse("a photo of a cat")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        shapes.ShapeSpec.parse("a pink circle on a blue background, top left")


def test_rendering_is_deterministic_per_seed_and_jittered_across_seeds():
    spec = shapes.ShapeSpec("circle", "red", "blue", "top left")
    a, b, c = shapes.render([spec, spec, spec], [1, 1, 2])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (3, 32, 32) and a.min() >= 0 and a.max() <= 1


def test_checker_accepts_every_rendered_prompt():
    specs = shapes.all_specs()
    images = shapes.render(specs, list(range(len(specs))))
    summary = checker.attribute_accuracy(checker.check_batch(images, [s.prompt for s in specs]))
    assert summary["all"] == 1.0


@pytest.mark.parametrize(
    ("rendered", "asked", "wrong"),
    [
        (("circle", "red", "blue", "top left"), ("circle", "green", "blue", "top left"), "colour"),
        (("circle", "red", "blue", "top left"), ("square", "red", "blue", "top left"), "shape"),
        (("triangle", "red", "blue", "top left"), ("circle", "red", "blue", "top left"), "shape"),
        (("circle", "red", "blue", "top left"), ("circle", "red", "blue", "bottom right"), "position"),
        (("circle", "red", "blue", "top left"), ("circle", "red", "yellow", "top left"), "background"),
    ],
)
def test_checker_flags_exactly_the_wrong_attribute(rendered, asked, wrong):
    image = shapes.render([shapes.ShapeSpec(*rendered)], [0])
    result = checker.check_batch(image, [shapes.ShapeSpec(*asked).prompt])[0]
    assert [name for name, ok in result.correct.items() if not ok] == [wrong]
    right = checker.check_batch(image, [shapes.ShapeSpec(*rendered).prompt])[0]
    assert right.soft_score > result.soft_score


def test_an_empty_canvas_has_no_shape():
    blank = torch.ones(1, 3, 32, 32) * torch.tensor([0.15, 0.30, 0.90])[:, None, None]
    result = checker.check_batch(blank, ["a red circle on a blue background, top left"])[0]
    assert result.correct == {"shape": False, "colour": False, "background": True, "position": False}


def test_cleanliness_is_one_for_rendered_images_and_drops_with_streaks_away_from_the_shape():
    spec = shapes.ShapeSpec("square", "red", "blue", "top left")
    image = shapes.render([spec], [0])
    clean = checker.check_batch(image, [spec.prompt])[0]
    assert clean.cleanliness == 1.0
    streaked = image.clone()
    streaked[:, :, 26, 4:30] = torch.tensor([0.9, 0.9, 0.9])[:, None]  # a white streak at the bottom
    dirty = checker.check_batch(streaked, [spec.prompt])[0]
    assert dirty.cleanliness < 0.8
    assert dirty.correct == clean.correct  # the attributes alone do not see it
