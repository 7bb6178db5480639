"""Tiny random-weight reward models, written once per test session (a few seconds, no downloads)."""

from __future__ import annotations

import pytest
import torch

from neighbor_grpo.backend.rewards import tiny_weights
from neighbor_grpo.backend.world.shapes import ShapeSpec, render


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """(config .json, weights .safetensors) of a tiny open_clip model."""
    return tiny_weights.write_open_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def tiny_aesthetic_head(tmp_path_factory):
    return tiny_weights.write_aesthetic_head(tmp_path_factory.mktemp("aesthetic") / "head.pth")


@pytest.fixture(scope="session")
def tiny_pickscore(tmp_path_factory):
    return tiny_weights.write_pickscore_folder(tmp_path_factory.mktemp("pickscore") / "pickscore")


@pytest.fixture
def no_weights_folder(monkeypatch):
    monkeypatch.delenv("NGRPO_REWARD_WEIGHTS", raising=False)


@pytest.fixture
def shapes_batch():
    """(images [6, 3, 32, 32], their correct prompts): three specs, two seeds each, interleaved."""
    return make_shapes_batch(6)


def make_shapes_batch(count: int) -> tuple[torch.Tensor, list[str]]:
    specs = [
        ShapeSpec("circle", "red", "blue", "top left"),
        ShapeSpec("square", "green", "white", "bottom right"),
        ShapeSpec("triangle", "yellow", "purple", "top right"),
    ]
    chosen = [specs[i % len(specs)] for i in range(count)]
    return render(chosen, seeds=list(range(count))), [spec.prompt for spec in chosen]
