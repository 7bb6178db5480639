"""Which config changes a resumed run refuses (the end-to-end refusal is in test_trainer.py)."""

from __future__ import annotations

from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.trainer import changed_settings


def changed(before: dict, after: dict) -> list[str]:
    return changed_settings(TrainConfig.from_dict(before).to_dict(), TrainConfig.from_dict(after).to_dict())


def test_reward_optimizer_and_algorithm_changes_are_named():
    assert changed({}, {"rewards": ["shapes_fidelity", "shapes_clean:0.5"]}) == ["rewards"]
    assert changed({}, {"optimizer": {"learning_rate": 3e-4}}) == ["optimizer.learning_rate"]
    assert changed({}, {"neighbor": {"sigma_p": 0.3}}) == ["neighbor.sigma_p"]
    assert changed({"algorithm": "sde_grpo"}, {"algorithm": "sde_grpo", "sde": {"eta": 0.5}}) == ["sde.eta"]


def test_settings_that_do_not_change_the_experiment_are_free():
    assert changed({}, {"iterations": 500, "optimizer": {"micro_batch": 4}, "sde": {"eta": 0.5}}) == []
    assert changed({}, {"eval": {"every": 5}, "checkpoint_every": 7}) == []


def test_reward_settings_of_any_name_are_kept():
    assert changed_settings({"reward_scale": 1.0}, {"reward_scale": 2.0}) == ["reward_scale"]
