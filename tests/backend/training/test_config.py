"""Configs load from YAML, and a wrong value is named with what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from neighbor_grpo.backend.training.config import ConfigError, TrainConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_configs_load(path):
    config = load_config(path)
    assert config.iterations >= 1 and config.rewards
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"algorithm": "ppo"}, "algorithm must be one of neighbor_grpo, sde_grpo; got 'ppo'"),
        ({"neighbor": {"sigmap": 0.3}}, r"unknown setting\(s\) neighbor.sigmap; allowed: .*sigma_p"),
        ({"neighbor": {"sigma_p": 1.5}}, r"neighbor.sigma_p must be in \(0, 1\)"),
        ({"neighbor": {"solver": "rk4"}}, "neighbor.solver must be one of euler, heun, dpmpp2m"),
        ({"group_size": 12, "neighbor": {"anchors": 13}}, r"neighbor.anchors must be in 1..group_size \(12\)"),
        ({"iterations": "ten"}, "iterations must be an integer, got 'ten'"),
        ({"rewards": []}, "rewards needs at least one reward"),
        (
            {"rewards": [{"nme": "x"}]},
            r"rewards\[0\]: unknown reward field\(s\) \[.nme.\]; allowed: name, weight, options",
        ),
        ({"rewards": ["shapes_fidelity:x"]}, r"rewards\[0\]: bad reward weight"),
        ({"lora": {"enabled": "yes"}}, "lora.enabled must be true or false"),
        ({"reward_std_floor": -0.5}, r"reward_std_floor must be 0 \(plain z-scores\) or more"),
        ({"distributed": {"fsdp": True}}, "distributed.fsdp shards a full fine-tune; set lora.enabled: false"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_overrides_use_dotted_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nneighbor:\n  steps: 8\n")
    config = load_config(path, {"neighbor.sigma_p": 0.3, "iterations": 7, "optimizer.learning_rate": "3e-4"})
    assert config.optimizer.learning_rate == 3e-4  # YAML reads 3e-4 as a string
    assert (config.neighbor.sigma_p, config.neighbor.steps, config.iterations) == (0.3, 8, 7)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_rewards_may_be_written_as_name_weight_strings():
    config = TrainConfig.from_dict({"rewards": ["shapes_fidelity:2", {"name": "colourfulness", "weight": 0.5}]})
    assert [(r.name, r.weight) for r in config.rewards] == [("shapes_fidelity", 2.0), ("colourfulness", 0.5)]
