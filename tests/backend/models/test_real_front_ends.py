"""Real models through the front ends' paths: `ngrpo sample --model PATH`, the model list, and
queueing a run with `model: PATH` (or a mapping of parts) through the actions layer."""

from __future__ import annotations

import pytest
from PIL import Image

from neighbor_grpo.backend.actions import ActionError, RunRequest, list_models, queue_run
from neighbor_grpo.backend.cli import main
from neighbor_grpo.backend.models import comfyui


def test_sample_cli_takes_a_comfyui_file(flux_layouts, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["sample", "--model", str(flux_layouts.diffusion_model), "--prompt", "a red circle", "--seed", "0",
            "--seed", "1", "--steps", "2", "--resolution", "32", "--scale", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    with Image.open(out) as grid:
        assert grid.size == (2 * 32, 32)


def test_the_model_list_shows_comfyui_files_with_their_parts(sd3_layouts, monkeypatch):
    monkeypatch.setenv("COMFYUI_PATH", str(sd3_layouts.comfy_root))
    models = {info.spec: info for info in list_models()}
    assert models["tiny"].family == "tiny"
    info = models[str(sd3_layouts.diffusion_model)]
    assert (info.family, info.available, info.missing) == ("sd3", True, [])
    assert info.description == "SD3 (custom shape)"
    assert info.parts["t5_tokenizer"] == str(sd3_layouts.comfy_root / comfyui.T5_TOKENIZER)


def test_a_run_with_a_model_path_or_parts_queues_and_a_broken_one_does_not(flux_layouts, tmp_path):
    home = tmp_path / "home"
    encoders = flux_layouts.comfy_root / "models" / "text_encoders"
    for spec in (str(flux_layouts.diffusion_model), {
        "transformer": str(flux_layouts.diffusion_model), "clip_l": str(encoders / "clip_l.safetensors"),
        "t5": str(encoders / "t5xxl_fp16.safetensors"),
        "vae": str(flux_layouts.comfy_root / "models" / "vae" / "ae.safetensors"),
        "t5_tokenizer": str(flux_layouts.comfy_root / comfyui.T5_TOKENIZER),
    }):  # fmt: skip
        config = {"model": spec, "prompts": ["a red circle"], "rewards": ["colourfulness"], "resolution": 32,
                  "eval": {"prompts": ["a red circle"], "gold": []}}  # fmt: skip
        queued = queue_run(home, RunRequest(config, start_worker=False))
        assert queued.memory is not None and queued.memory.peak > 0
    broken = {"model": {"transformer": str(flux_layouts.diffusion_model), "clip_l": str(tmp_path / "none.safetensors")}}
    with pytest.raises(ActionError, match="clip_l not found"):
        queue_run(home, RunRequest(broken, start_worker=False))


def test_the_dashboard_shows_the_memory_estimate_of_a_real_model_run(sd3_layouts):
    from neighbor_grpo.backend.actions import estimate_memory
    from neighbor_grpo.ui.new_run import describe_memory

    config = {"model": str(sd3_layouts.diffusion_model), "resolution": 64, "device": "cpu"}
    assert estimate_memory({"model": "tiny"}) is None
    assert not estimate_memory(config, budget_gb=0.01).fits
    shown = describe_memory(config)
    assert "estimated peak GPU memory" in shown and "transformer weights (frozen)" in shown
    assert describe_memory({"model": "tiny"}) == ""
