"""`ngrpo pretrain-tiny` is seeded: the same settings give the same weights."""

from __future__ import annotations

from safetensors.torch import load_file

from neighbor_grpo.backend.cli import main


def test_same_settings_same_weights_and_the_result_loads(tmp_path):
    args = ["pretrain-tiny", "--steps", "3", "--batch-size", "4", "--images-per-prompt", "1", "--warmup-steps", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (load_file(str(tmp_path / name / "model.safetensors")) for name in "abc")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)
    assert main(["sample", "--model", f"tiny:{tmp_path / 'a'}", "--prompt", "a red circle on a blue background, top left",
                 "--steps", "2", "--out", str(tmp_path / "g.png")]) == 0  # fmt: skip
