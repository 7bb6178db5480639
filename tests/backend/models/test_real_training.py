"""Training SD3 and FLUX LoRAs: one iteration of each algorithm changes the LoRA (also under bf16
autocast on the CPU, and with gradient checkpointing), and the exported LoRA, loaded by diffusers'
full pipeline, reproduces the trained velocities."""

from __future__ import annotations

import pytest
import torch
from diffusers import FluxPipeline, StableDiffusion3Pipeline

from neighbor_grpo.backend.training.config import TrainConfig
from neighbor_grpo.backend.training.lora import export_lora, lora_state
from neighbor_grpo.backend.training.reporting import JsonlReporter
from neighbor_grpo.backend.training.trainer import Trainer

PROMPTS = ["a red circle on the blue background", "a green square top left", "a blue triangle"]


def trainer_for(spec, run_dir, algorithm="neighbor_grpo", **changes) -> Trainer:
    data = {
        "name": "real", "model": spec, "algorithm": algorithm, "prompts": PROMPTS, "rewards": ["colourfulness"],
        "iterations": 1, "prompts_per_iteration": 1, "group_size": 3, "resolution": 32, "device": "cpu",
        "neighbor": {"steps": 3, "anchors": 2, "trained_steps": 2, "solver": "dpmpp2m"},
        "sde": {"steps": 3, "train_fraction": 0.67},
        "lora": {"rank": 2, "alpha": 2}, "optimizer": {"learning_rate": 1e-2, "micro_batch": 4},
        "eval": {"prompts": PROMPTS[:1], "seeds_per_prompt": 1, "gold": [], "gallery_size": 1},
    }  # fmt: skip
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    trainer = Trainer(TrainConfig.from_dict(data), run_dir, JsonlReporter(run_dir))
    trainer._setup()
    return trainer


@pytest.mark.parametrize("algorithm", ["neighbor_grpo", "sde_grpo"])
@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_one_iteration_changes_the_lora(layouts, tmp_path, algorithm, precision):
    checkpointing = precision == "bf16"  # exercise gradient checkpointing on half the cases
    trainer = trainer_for(
        str(layouts.diffusion_model), tmp_path, algorithm,
        optimizer={"mixed_precision": precision, "gradient_checkpointing": checkpointing},
    )  # fmt: skip
    before = lora_state(trainer.model)
    if precision == "bf16":
        assert trainer.model.dtype == torch.bfloat16  # frozen base in bf16 ...
        assert all(p.dtype == torch.float32 for p in trainer.params)  # ... trained weights fp32 masters
    metrics = trainer.iteration()
    after = lora_state(trainer.model)
    assert metrics["grad_norm"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    # lora_B starts at zero, so the first step moves B (A's gradient is zero until B is not).
    b_keys = [k for k in before if ".lora_B." in k]
    changed = [k for k in b_keys if not torch.equal(before[k], after[k])]
    assert len(changed) >= len(b_keys) // 2


def test_full_fine_tuning_in_bf16_steps_fp32_weights(sd3_layouts, tmp_path):
    trainer = trainer_for(
        str(sd3_layouts.diffusion_model), tmp_path, lora={"enabled": False},
        optimizer={"mixed_precision": "bf16", "learning_rate": 1e-6},
    )  # fmt: skip
    assert all(p.dtype == torch.float32 for p in trainer.params)
    before = [p.detach().clone() for p in trainer.params]
    trainer.iteration()
    # lr 1e-6 moves weights by far less than bf16's resolution; fp32 masters keep the step.
    assert sum(not torch.equal(a, p) for a, p in zip(before, trainer.params, strict=True)) > len(before) // 2


def test_exported_lora_loads_into_the_diffusers_pipeline(layouts, tmp_path):
    trainer = trainer_for(str(layouts.diffusers), tmp_path)
    trainer.iteration()
    for param in trainer.params:  # make the adapter's effect large enough to compare
        param.data.add_(torch.randn_like(param) * 0.05)
    model = trainer.model
    model.guidance = 1.0
    x = model.initial_noise([5], resolution=32)
    sigma = torch.tensor([0.6])
    with torch.no_grad():
        trained = model.velocity(x, sigma, model.encode_prompts(PROMPTS[:1]))
    path = export_lora(model, trainer.config.lora, tmp_path / "lora.safetensors", {"name": "t", "step": 1})

    pipeline_class = StableDiffusion3Pipeline if layouts.family == "sd3" else FluxPipeline
    pipe = pipeline_class.from_pretrained(layouts.diffusers, local_files_only=True)
    from neighbor_grpo.backend.models.registry import load_model

    fresh = load_model(str(layouts.diffusers))
    fresh.guidance = 1.0
    with torch.no_grad():
        base = fresh.velocity(x, sigma, fresh.encode_prompts(PROMPTS[:1]))
    pipe.load_lora_weights(str(path))
    fresh.transformer = pipe.transformer  # the pipeline's own transformer, with diffusers' LoRA
    with torch.no_grad():
        loaded = fresh.velocity(x, sigma, fresh.encode_prompts(PROMPTS[:1]))
    assert (trained - base).abs().max() > 1e-2
    assert torch.allclose(loaded, trained, atol=2e-3, rtol=1e-2), (loaded - trained).abs().max()


def test_a_whole_run_on_a_comfyui_file_evaluates_checkpoints_and_resumes(flux_layouts, tmp_path):
    from neighbor_grpo.backend.training import checkpoint as ckpt

    def config(iterations):
        return TrainConfig.from_dict({
            "name": "flux-run", "model": str(flux_layouts.diffusion_model), "prompts": PROMPTS,
            "rewards": ["colourfulness"], "iterations": iterations, "prompts_per_iteration": 1, "group_size": 2,
            "resolution": 32, "device": "cpu", "checkpoint_every": 1,
            "neighbor": {"steps": 2, "anchors": 1, "trained_steps": 1}, "lora": {"rank": 2, "alpha": 2},
            "eval": {"every": 1, "prompts": PROMPTS[:1], "seeds_per_prompt": 1, "gold": [], "gallery_size": 1},
        })  # fmt: skip

    first = Trainer(config(1), tmp_path, JsonlReporter(tmp_path)).run()
    resumed = Trainer(config(2), tmp_path, JsonlReporter(tmp_path)).run()
    assert (first.status, resumed.status, resumed.step) == ("finished", "finished", 2)
    lora = ckpt.folder_for(tmp_path / "checkpoints", 2) / ckpt.LORA
    from safetensors import safe_open

    with safe_open(str(lora), "pt") as handle:
        assert handle.metadata()["modelspec.architecture"] == "flux-1-dev/lora"  # custom shape: the family's default
        assert any(k.startswith("transformer.single_transformer_blocks.0.proj_mlp.") for k in handle.keys())  # noqa: SIM118
    assert list((tmp_path / "samples").glob("step-*/*.png"))
