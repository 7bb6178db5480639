"""A fresh registry per test, and one small run trained once for the tests that read results."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.backend.worker import Worker
from neighbor_grpo.storage.registry import forget_registries


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    yield tmp_path / "home"
    forget_registries()


def small_config(model_dir, name: str = "small", **changes) -> dict:
    """Two iterations of 2 prompts × group 4 on a 1-layer random tiny model: a few seconds."""
    return {
        "name": name, "model": f"tiny:{model_dir}", "iterations": 2, "prompts_per_iteration": 2, "group_size": 4,
        "checkpoint_every": 1, "seed": 1,
        "neighbor": {"steps": 3, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 4},
        "optimizer": {"learning_rate": 5e-2, "micro_batch": 8},
        "eval": {"every": 1, "max_prompts": 2, "seeds_per_prompt": 2, "gallery_size": 4},
        **changes,
    }  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, model_dir):
    """(home, run id) of a finished two-iteration run with checkpoints at steps 1 and 2."""
    home = tmp_path_factory.mktemp("trained") / "home"
    run_id = queue_run(home, RunRequest(small_config(model_dir), start_worker=False)).run_id
    Worker(home, exit_when_idle=True).serve(handle_signals=False)
    yield home, run_id
    forget_registries()
