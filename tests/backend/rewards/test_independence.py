"""The gold rule: a gold metric may not be a training reward or a transform of one."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend.rewards import RewardSpec
from neighbor_grpo.backend.rewards.independence import check_gold_independent, dependent_pairs
from neighbor_grpo.backend.training.config import ConfigError, TrainConfig


def specs(*texts: str) -> list[RewardSpec]:
    return [RewardSpec.parse(t) for t in texts]


def test_a_transform_of_a_training_reward_is_refused_whatever_its_name_or_weight():
    for gold in (
        "shapes_fidelity",
        "shapes_fidelity:2 batch_size=8",
        "shapes_accuracy",
        "shapes_clean",
        "shapes_shape",
    ):
        with pytest.raises(ValueError, match="not independent of the training reward 'shapes_fidelity'"):
            check_gold_independent(specs("shapes_fidelity"), specs(gold))


def test_independent_measurements_pass():
    check_gold_independent(
        specs("shapes_fidelity", "shapes_clean:0.5"), specs("shapes_render_match", "shapes_render_fit")
    )
    check_gold_independent(specs("jpeg_compressibility"), specs("shapes_accuracy"))


def test_full_specs_are_compared_not_names():
    # Same registered name, other options: another measurement.
    assert not dependent_pairs(specs("plugin target=a.py:score"), specs("plugin target=b.py:score"))
    same = dependent_pairs(specs("plugin target=a.py:score"), specs("plugin:3 target=a.py:score batch_size=4"))
    assert len(same) == 1


def test_config_refuses_a_dependent_gold_and_points_to_monitor():
    with pytest.raises(ConfigError, match=r"eval\.monitor"):
        TrainConfig.from_dict({"rewards": ["shapes_fidelity"], "eval": {"gold": ["shapes_accuracy"]}})
    config = TrainConfig.from_dict(
        {"rewards": ["shapes_fidelity"], "eval": {"gold": ["shapes_render_match"], "monitor": ["shapes_accuracy"]}}
    )
    assert [s.name for s in config.eval.monitor] == ["shapes_accuracy"]


def test_early_stop_is_on_by_default_whenever_a_gold_metric_is_configured():
    assert TrainConfig.from_dict({}).eval.patience == 3
    assert TrainConfig.from_dict({"eval": {"gold": []}}).eval.patience == 0
    assert TrainConfig.from_dict({"eval": {"early_stop_patience": 0}}).eval.patience == 0
    assert TrainConfig.from_dict({"eval": {"early_stop_patience": 5}}).eval.patience == 5
