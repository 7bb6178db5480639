"""Clear errors, raised from file headers before a run is queued, and ComfyUI discovery."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from neighbor_grpo.backend.models import comfyui, sources
from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.models.weights_files import ModelError


def test_a_pickled_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match=r"not a \.safetensors file"):
        load_model(str(path))


def test_an_unknown_architecture_is_named(tmp_path):
    path = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ModelError, match=r"not an SD3/SD3\.5 or FLUX\.1 diffusion model"):
        load_model(str(path))


def test_a_wrong_file_in_a_text_encoder_slot_is_refused(sd3_layouts):
    encoders = sd3_layouts.comfy_root / "models" / "text_encoders"
    spec = {"transformer": str(sd3_layouts.diffusion_model), "clip_l": str(encoders / "t5xxl_fp16.safetensors")}
    with pytest.raises(ModelError, match="not a CLIP text encoder"):
        load_model(spec)


def test_a_missing_text_encoder_and_tokenizer_are_named(sd3_layouts, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(sd3_layouts.comfy_root / "models", models)
    (models / "text_encoders" / "clip_g.safetensors").unlink()
    with pytest.raises(ModelError, match=r"missing CLIP-G \(clip_g.safetensors\), the T5 tokenizer"):
        load_model(str(models / "diffusion_models" / sd3_layouts.diffusion_model.name))


def test_a_transformer_missing_weights_is_refused_not_left_on_meta(flux_layouts, tmp_path):
    state = load_file(str(flux_layouts.diffusion_model))
    del state["transformer_blocks.0.attn.to_q.weight"]
    models = tmp_path / "models"
    shutil.copytree(flux_layouts.comfy_root / "models", models)
    path = models / "diffusion_models" / flux_layouts.diffusion_model.name
    save_file(state, str(path))
    spec = {"transformer": str(path), "t5_tokenizer": str(flux_layouts.comfy_root / comfyui.T5_TOKENIZER)}
    with pytest.raises(ModelError, match=r"stayed empty \(on `meta`\).*transformer_blocks\.0\.attn\.to_q\.weight"):
        load_model(spec)


def test_comfyui_folders_are_discovered_with_extra_model_paths(sd3_layouts, flux_layouts, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "unet").mkdir(parents=True)
    shutil.copy(flux_layouts.diffusion_model, elsewhere / "unet" / "flux_other.safetensors")
    (sd3_layouts.comfy_root / "extra_model_paths.yaml").write_text(
        f"other:\n    base_path: {elsewhere}\n    diffusion_models: |\n        unet\n        missing_dir\n"
    )
    monkeypatch.setenv("COMFYUI_PATH", str(sd3_layouts.comfy_root))
    try:
        found = comfyui.discover()
    finally:
        (sd3_layouts.comfy_root / "extra_model_paths.yaml").unlink()
    names = [p.name for p in found.files("diffusion_models")]
    assert names == ["sd3_tiny.safetensors", "flux_other.safetensors"]
    assert found.t5_tokenizers() == [sd3_layouts.comfy_root / comfyui.T5_TOKENIZER]
    source = sources.resolve(str(sd3_layouts.diffusion_model), found)
    assert source.family == "sd3" and source.missing == []
    assert {p.path.name for p in source.parts.values()} >= {"clip_l.safetensors", "clip_g.safetensors"}


def test_a_scaled_fp8_text_encoder_is_dequantized(flux_layouts, tmp_path):
    """ComfyUI's t5xxl_fp8_e4m3fn_scaled keeps weight/scale in fp8 plus `.scale_weight`."""
    encoders = flux_layouts.comfy_root / "models" / "text_encoders"
    state = load_file(str(encoders / "t5xxl_fp16.safetensors"))
    scaled = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    for key, value in state.items():
        if key.endswith(".weight") and value.ndim == 2 and "embed" not in key and "shared" not in key:
            scale = value.abs().max() / 448.0
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key[: -len("weight")] + "scale_weight"] = scale.reshape(1)
        else:
            scaled[key] = value
    path = tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors"
    save_file(scaled, str(path))
    spec = {"transformer": str(flux_layouts.diffusion_model), "t5": str(path)}
    fp8 = load_model(spec).encode_prompts(["a red circle"])
    exact = load_model(str(flux_layouts.diffusion_model)).encode_prompts(["a red circle"])
    error = (fp8.context - exact.context).abs().max() / exact.context.abs().max()
    assert error < 0.1, error  # fp8's 3 mantissa bits, not a scale-sized error
