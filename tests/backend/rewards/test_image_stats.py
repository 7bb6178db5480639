import pytest
import torch
import torch.nn.functional as F

from neighbor_grpo.backend.rewards import build_reward


def _blur(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.ones(3, 1, 5, 5) / 25
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)


def test_blurred_images_score_lower_sharpness(shapes_batch):
    images, prompts = shapes_batch
    sharp = build_reward("sharpness").score(images, prompts)
    blurred = build_reward("sharpness").score(_blur(images), prompts)
    assert (blurred < sharp).all()


def test_jpeg_incompressibility_ranks_noise_above_a_flat_image_and_compressibility_the_reverse():
    images = torch.stack(
        [torch.full((3, 64, 64), 0.5), torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))]
    )
    prompts = ["", ""]
    incompressible = build_reward("jpeg_incompressibility").score(images, prompts)
    compressible = build_reward("jpeg_compressibility").score(images, prompts)
    assert incompressible[1] > incompressible[0] > 0
    assert torch.equal(compressible, -incompressible)


def test_brightness_and_colour_target():
    black, white = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    images = torch.cat([black, white])
    assert build_reward("brightness").score(images, ["", ""]).tolist() == pytest.approx([0.0, 1.0])
    assert build_reward("brightness target=0.25").score(images, ["", ""]).tolist() == pytest.approx([-0.25, -0.75])
    red = torch.tensor([0.9, 0.1, 0.1])[:, None, None].expand(3, 8, 8)
    blue = torch.tensor([0.1, 0.1, 0.9])[:, None, None].expand(3, 8, 8)
    for target in ("0.9,0.1,0.1", "#e61a1a", "red"):
        scores = build_reward(f"colour_target target={target}").score(torch.stack([red, blue]), ["", ""])
        assert scores[0] > scores[1]


def test_colourfulness_ranks_colour_above_grey(shapes_batch):
    images, prompts = shapes_batch
    grey = images.mean(dim=1, keepdim=True).expand_as(images)
    colourful = build_reward("colourfulness").score(images, prompts)
    assert (colourful > build_reward("colourfulness").score(grey, prompts) + 10).all()


@pytest.mark.parametrize(
    "text, message",
    [
        ("colour_target", "needs option 'target'"),
        ("colour_target target=reddish", "is not a colour"),
        ("jpeg_compressibility quality=high", "is not an integer"),
        ("sharpness radius=2", "has no option"),
    ],
)
def test_bad_options_say_what_to_write(text, message):
    with pytest.raises(ValueError, match=message):
        build_reward(text)
