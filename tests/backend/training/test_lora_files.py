"""A LoRA file given to sample or compare is checked whole against the model before anything is
applied, and a bad one is refused with the file's name and the reason (docs/bad_inputs.md)."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from neighbor_grpo.backend.models.registry import load_model
from neighbor_grpo.backend.training.config import LoraSettings
from neighbor_grpo.backend.training.lora import add_lora, apply_lora_file, export_lora
from neighbor_grpo.backend.training.lora_files import LoraFileError, check_lora_file


@pytest.fixture(scope="module")
def good_lora(tmp_path_factory, model_dir):
    model = load_model(f"tiny:{model_dir}")
    settings = LoraSettings(rank=4, alpha=4)
    add_lora(model, settings)
    path = tmp_path_factory.mktemp("lora") / "good.safetensors"
    return export_lora(model, settings, path, {"name": "good"})


@pytest.fixture
def model(model_dir):
    return load_model(f"tiny:{model_dir}")


def _tensors_and_metadata(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()  # noqa: SIM118


def test_a_good_file_loads_and_applies(model, good_lora):
    state = check_lora_file(model, good_lora)
    assert state and all(".lora_" in key for key in state)
    apply_lora_file(model, good_lora)


def _rewrite(good, tmp_path, name, change_tensors=None, change_metadata=None):
    tensors, metadata = _tensors_and_metadata(good)
    if change_tensors:
        tensors = change_tensors(tensors)
    if change_metadata:
        metadata = change_metadata(metadata)
    path = tmp_path / name
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_not_safetensors(model, tmp_path):
    pickle = tmp_path / "lora.pt"
    torch.save({"a": torch.zeros(1)}, pickle)
    with pytest.raises(LoraFileError, match=r"lora.pt: LoRA files must be .safetensors"):
        check_lora_file(model, pickle)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"PK\x03\x04 this is a zip file, not tensors" * 10)
    with pytest.raises(LoraFileError, match=r"garbage.safetensors: not a safetensors file"):
        check_lora_file(model, garbage)


def test_truncated(model, good_lora, tmp_path):
    data = good_lora.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(LoraFileError, match=r"cut.safetensors: truncated"):
        check_lora_file(model, cut)
    stub = tmp_path / "stub.safetensors"
    stub.write_bytes(data[:100])
    with pytest.raises(LoraFileError, match=r"stub.safetensors: truncated: its header needs"):
        check_lora_file(model, stub)


def test_lying_header(model, good_lora, tmp_path):
    data = good_lora.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [dim * 2 for dim in header[key]["shape"]]  # claims more than its bytes
    raw = json.dumps(header).encode()
    liar = tmp_path / "liar.safetensors"
    liar.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])
    with pytest.raises(LoraFileError, match=r"liar.safetensors: its header lies about tensor"):
        check_lora_file(model, liar)


def test_foreign_architecture(model, good_lora, tmp_path):
    flux = _rewrite(
        good_lora, tmp_path, "flux.safetensors",
        change_metadata=lambda m: {**m, "modelspec.architecture": "flux-1-dev/lora", "modelspec.title": "Anime"},
    )  # fmt: skip
    with pytest.raises(LoraFileError, match=r"flux.safetensors: a LoRA for flux-1-dev/lora \('Anime'\).*this model is"):
        check_lora_file(model, flux)


def test_keys_of_another_trainer(model, good_lora, tmp_path):
    kohya = _rewrite(
        good_lora, tmp_path, "kohya.safetensors",
        change_tensors=lambda t: {k.replace("transformer.", "lora_unet_").replace(".", "_"): v for k, v in t.items()},
        change_metadata=lambda m: {},
    )  # fmt: skip
    with pytest.raises(LoraFileError, match=r"kohya.safetensors: \d+ of \d+ keys are not LoRA weights"):
        check_lora_file(model, kohya)


def test_keys_that_only_partly_match(model, good_lora, tmp_path):
    def rename_half(tensors):
        # Layers a deeper model of the same family has: the keys look right but match nothing here.
        keys = sorted(tensors)
        return {(k.replace(".0.", ".9.") if i < len(keys) // 2 else k): tensors[k] for i, k in enumerate(keys)}

    partial = _rewrite(good_lora, tmp_path, "partial.safetensors", change_tensors=rename_half)
    with pytest.raises(LoraFileError, match=r"partial.safetensors: only \d+ of \d+ keys match.*refusing to apply part"):
        check_lora_file(model, partial)
    before = {k: v.clone() for k, v in model.transformer.state_dict().items()}
    with pytest.raises(LoraFileError):
        apply_lora_file(model, partial)
    after = model.transformer.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_wrong_shapes(model, good_lora, tmp_path):
    def widen(tensors):
        key = next(k for k in sorted(tensors) if k.endswith("lora_A.weight"))
        rank, features = tensors[key].shape
        return {**tensors, key: torch.zeros(rank, features + 8, dtype=tensors[key].dtype)}

    wide = _rewrite(good_lora, tmp_path, "wide.safetensors", change_tensors=widen)
    with pytest.raises(LoraFileError, match=r"wide.safetensors: wrong shapes for transformer\..*differently sized"):
        check_lora_file(model, wide)


def test_half_a_pair(model, good_lora, tmp_path):
    def drop_one_b(tensors):
        key = next(k for k in sorted(tensors) if k.endswith("lora_B.weight"))
        return {k: v for k, v in tensors.items() if k != key}

    lonely = _rewrite(good_lora, tmp_path, "lonely.safetensors", change_tensors=drop_one_b)
    with pytest.raises(LoraFileError, match=r"lonely.safetensors: .*lora_A.weight without its partner"):
        check_lora_file(model, lonely)


def test_the_sample_command_names_the_file(model_dir, tmp_path, capsys):
    from neighbor_grpo.backend.cli import main

    missing = tmp_path / "nowhere.safetensors"
    code = main(["sample", "--model", f"tiny:{model_dir}", "--prompt", "a red circle", "--lora", str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and "nowhere.safetensors" in err and "Traceback" not in err
