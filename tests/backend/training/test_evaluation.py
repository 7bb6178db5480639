"""Held-out evaluation: one sampler for every run (eval.solver / eval.steps), the run's own rollout
sampler on request, gold and monitor metrics."""

from __future__ import annotations

import pytest
import torch

from neighbor_grpo.backend.sampling import generate
from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.reporting import JsonlReporter
from neighbor_grpo.backend.training.trainer import Trainer

pytestmark = pytest.mark.slow


def evaluator_for(model_dir, tmp_path, algorithm, **eval_settings):
    config = TrainConfig.from_dict(
        {
            "model": f"tiny:{model_dir}",
            "algorithm": algorithm,
            "group_size": 2,
            "neighbor": {"solver": "dpmpp2m", "steps": 4, "trained_steps": 2, "anchors": 1},
            "sde": {"steps": 5},
            "eval": {"max_prompts": 3, "seeds_per_prompt": 1, "gallery_size": 0, **eval_settings},
        }
    )
    trainer = Trainer(config, tmp_path, JsonlReporter(tmp_path))
    trainer._setup()
    return trainer


@pytest.mark.parametrize("algorithm", ["neighbor_grpo", "sde_grpo"])
def test_every_algorithm_is_evaluated_on_the_eval_sampler(model_dir, tmp_path, algorithm, monkeypatch):
    trainer = evaluator_for(model_dir, tmp_path, algorithm, solver="heun", steps=3, monitor=["shapes_accuracy"])
    seen = []
    monkeypatch.setattr(
        "neighbor_grpo.backend.training.evaluation.generate",
        lambda model, prompts, seeds, **kw: seen.append(kw) or generate(model, prompts, seeds, **kw),
    )
    metrics = trainer.evaluator.evaluate(trainer.model, 0, trainer.reporter)
    assert [(kw["solver"], kw["steps"]) for kw in seen] == [("heun", 3)]
    for key in ("eval/shapes_fidelity", "eval/shapes_render_match", "eval/shapes_render_fit", "eval/shapes_accuracy"):
        assert key in metrics
    gold = (metrics["eval/shapes_render_match"] + metrics["eval/shapes_render_fit"]) / 2
    assert metrics["eval/gold"] == pytest.approx(gold)
    assert not any(key.startswith("eval_rollout/") for key in metrics)


def test_the_rollout_sampler_is_evaluated_on_request_and_repeatably(model_dir, tmp_path):
    trainer = evaluator_for(model_dir, tmp_path, "sde_grpo", rollout_sampler=True)
    first = trainer.evaluator.evaluate(trainer.model, 0, trainer.reporter)
    again = trainer.evaluator.evaluate_rollout_sampler(trainer.model)
    assert {k: v for k, v in first.items() if k.startswith("eval_rollout/")} == again
    assert again["eval_rollout/shapes_fidelity"] != first["eval/shapes_fidelity"]
    assert torch.isfinite(torch.tensor(list(again.values()))).all()
