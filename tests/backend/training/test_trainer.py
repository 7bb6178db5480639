"""The trainer end to end on a small random tiny model: determinism, exact resume, continuous
metrics, checkpoints and the exported LoRA."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.training import checkpoint as ckpt
from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.lora import apply_lora_file
from neighbor_grpo.backend.training.reporting import JsonlReporter, read_jsonl
from neighbor_grpo.backend.training.trainer import Trainer, reward_health

pytestmark = pytest.mark.slow


def small_config(model_dir, **changes) -> TrainConfig:
    data = {
        "name": "t",
        "model": f"tiny:{model_dir}",
        "iterations": 6,
        "prompts_per_iteration": 2,
        "group_size": 4,
        "checkpoint_every": 3,
        "seed": 3,
        "neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2},
        "sde": {"steps": 4, "train_fraction": 0.5},
        "lora": {"rank": 4, "alpha": 8},
        "optimizer": {"learning_rate": 1e-2, "micro_batch": 3},
        "eval": {"every": 3, "max_prompts": 2, "seeds_per_prompt": 1, "gallery_size": 2},
    }
    data.update(changes)
    return TrainConfig.from_dict(data)


def train(config, run_dir):
    return Trainer(config, run_dir, JsonlReporter(run_dir)).run()


def final_weights(run_dir, step=6):
    return load_file(str(ckpt.folder_for(run_dir / "checkpoints", step) / ckpt.WEIGHTS))


def test_same_seed_same_run_and_resume_is_exact(model_dir, tmp_path):
    straight = tmp_path / "straight"
    outcome = train(small_config(model_dir), straight)
    assert (outcome.status, outcome.step) == ("finished", 6)
    again = tmp_path / "again"
    train(small_config(model_dir), again)
    resumed = tmp_path / "resumed"
    train(small_config(model_dir, iterations=3), resumed)
    # A crash after iteration 4 leaves metrics past the last checkpoint: resume must drop them.
    JsonlReporter(resumed).metrics(4, {"reward": -1.0})
    train(small_config(model_dir), resumed)

    a, b, c = final_weights(straight), final_weights(again), final_weights(resumed)
    assert a.keys() == c.keys() and a
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert not all(torch.equal(a[k], final_weights(straight, 3)[k]) for k in a)  # training moved the LoRA

    rows = read_jsonl(resumed / "metrics.jsonl")
    train_steps = [r["step"] for r in rows if "reward" in r]
    assert train_steps == [1, 2, 3, 4, 5, 6]
    assert all(r.get("reward") != -1.0 for r in rows)
    straight_rewards = [r["reward"] for r in read_jsonl(straight / "metrics.jsonl") if "reward" in r]
    assert straight_rewards == [r["reward"] for r in rows if "reward" in r]


def test_metrics_samples_and_checkpoints_are_written(model_dir, tmp_path):
    train(small_config(model_dir, keep_checkpoints=1), tmp_path)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    first = next(r for r in rows if r["step"] == 1)
    for key in ("reward", "reward/shapes_fidelity", "loss", "s_per_iter", "flat_group_fraction", "clip_fraction"):
        assert key in first
    # One training reward: the advantages are a monotone function of it within each group.
    assert first["advantage_corr/shapes_fidelity"] > 0.9 and first["group_std/shapes_fidelity"] > 0
    assert first["nfe_old"] == 4 and first["nfe_theta"] == pytest.approx(2 / 4 * 2)
    evals = [r for r in rows if "eval/gold" in r]
    assert [r["step"] for r in evals] == [0, 3, 6]
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert len(samples) == 3 * 2 and all((tmp_path / s["path"]).is_file() for s in samples)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path / "checkpoints")] == [6]
    records = read_jsonl(tmp_path / "checkpoints.jsonl")
    assert [r["step"] for r in records] == [3, 6]
    assert ckpt.file_hashes(tmp_path / records[-1]["folder"]) == records[-1]["files"]


def test_exported_lora_loads_through_diffusers_and_reproduces_the_trained_model(model_dir, tmp_path):
    config = small_config(model_dir, iterations=3)
    trainer = Trainer(config, tmp_path, JsonlReporter(tmp_path))
    trainer.run()
    lora_file = tmp_path / "checkpoints" / "step-000003" / ckpt.LORA

    with safe_open(str(lora_file), "pt") as handle:
        metadata = handle.metadata()
        keys = list(handle.keys())
        dtypes = {handle.get_tensor(k).dtype for k in keys}
    assert metadata["format"] == "pt" and metadata["modelspec.architecture"].endswith("/lora")
    assert metadata["ss_network_dim"] == metadata["ss_network_alpha"] == "4"
    assert '"step": 3' in metadata["ngrpo.run"]
    assert dtypes == {torch.float16}
    assert not any(k.endswith(".alpha") for k in keys)
    fresh = load_model(config.model)
    modules = dict(fresh.transformer.named_modules())
    for key in keys:
        assert key.startswith("transformer.") and (".lora_A.weight" in key or ".lora_B.weight" in key)
        assert key.removeprefix("transformer.").rsplit(".lora_", 1)[0] in modules

    apply_lora_file(fresh, lora_file)
    x = torch.randn(2, 12, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.7, 0.3])
    prompts = ["a red circle on a blue background, top left", "a white square on a green background, bottom right"]
    trained = trainer.model.eval()
    with torch.no_grad():
        expected = trained.velocity(x, sigma, trained.encode_prompts(prompts))
        got = fresh.velocity(x, sigma, fresh.encode_prompts(prompts))
        base = load_model(config.model).velocity(x, sigma, fresh.encode_prompts(prompts))
    assert (expected - base).abs().max() > 1e-3  # the LoRA does something
    assert torch.allclose(got, expected, atol=2e-3, rtol=1e-2)


def test_sde_baseline_trains_on_the_same_machinery(model_dir, tmp_path):
    outcome = train(small_config(model_dir, algorithm="sde_grpo", iterations=2, checkpoint_every=2), tmp_path)
    assert outcome.status == "finished"
    first = next(r for r in read_jsonl(tmp_path / "metrics.jsonl") if r["step"] == 1)
    assert first["nfe_old"] == 4 and first["nfe_theta"] == 2


def test_resuming_with_a_changed_algorithm_is_refused(model_dir, tmp_path):
    train(small_config(model_dir, iterations=3), tmp_path)
    with pytest.raises(ValueError, match="the config changed algorithm"):
        train(small_config(model_dir, algorithm="sde_grpo"), tmp_path)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"optimizer": {"learning_rate": 3e-3, "micro_batch": 3}}, "optimizer.learning_rate"),
        ({"rewards": ["shapes_fidelity", "shapes_clean:0.5"]}, "rewards"),
        ({"neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2, "sigma_p": 0.3}}, "neighbor.sigma_p"),
    ],
)
def test_resuming_with_changed_rewards_optimizer_or_algorithm_settings_is_refused(model_dir, tmp_path, changes, named):
    train(small_config(model_dir, iterations=3), tmp_path)
    with pytest.raises(ValueError, match=f"the config changed {re.escape(named)}"):
        train(small_config(model_dir, **changes), tmp_path)


def test_resuming_may_change_the_micro_batch_and_the_other_algorithms_settings(model_dir, tmp_path):
    train(small_config(model_dir, iterations=3), tmp_path)
    changed = {"optimizer": {"learning_rate": 1e-2, "micro_batch": 5}, "sde": {"steps": 6}}
    assert train(small_config(model_dir, iterations=4, **changed), tmp_path).step == 4


def test_inner_steps_count_in_nfe_and_every_inner_step_reports(model_dir, tmp_path, monkeypatch):
    norms = iter([1.0, 3.0, 5.0, 7.0])
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, limit: clip(params, limit) * 0 + next(norms))
    neighbor = {"steps": 4, "anchors": 2, "trained_steps": 2, "inner_steps": 2}
    train(small_config(model_dir, iterations=2, checkpoint_every=2, neighbor=neighbor), tmp_path)
    rows = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "reward" in r]
    assert [r["nfe_theta"] for r in rows] == [pytest.approx(2 / 4 * 2 * 2)] * 2
    assert [(r["grad_norm"], r["grad_norm_max"]) for r in rows] == [(2.0, 3.0), (6.0, 7.0)]


def test_timings_wait_for_the_gpu(model_dir, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    trainer = Trainer(small_config(model_dir), tmp_path, JsonlReporter(tmp_path))
    trainer.device = torch.device("cuda")
    trainer._clock()
    assert calls == [torch.device("cuda")]


def test_fsdp_on_one_process_trains_unsharded_and_says_so(model_dir, tmp_path, capsys):
    trainer = Trainer(small_config(model_dir, lora={"enabled": False}, distributed={"fsdp": True}), tmp_path, None)
    trainer._setup()
    assert not trainer.sharded
    assert all(type(p) is torch.nn.Parameter for p in trainer.params)
    assert "distributed.fsdp has no effect on one process" in capsys.readouterr().out


def test_reward_health_shows_which_rewards_the_advantages_follow():
    advantages = torch.tensor([[-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]])
    raw = {
        "followed": torch.tensor([0.1, 0.2, 0.3, 0.9, 0.1, 0.5]),
        "opposed": torch.tensor([3.0, 2.0, 1.0, 1.0, 3.0, 2.0]),
        "flat": torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
    }
    health = reward_health(raw, advantages)
    assert health["advantage_corr/followed"] == pytest.approx(1.0)
    assert health["advantage_corr/opposed"] == pytest.approx(-1.0)
    assert health["advantage_corr/flat"] == 0.0 and health["group_std/flat"] == 0.0
    assert health["group_std/followed"] == pytest.approx((0.0816 + 0.3266) / 2, abs=1e-3)
