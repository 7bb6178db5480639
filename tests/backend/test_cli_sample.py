"""`ngrpo sample` as a user runs it."""

from __future__ import annotations

from PIL import Image

from neighbor_grpo.backend.cli import main


def test_sample_writes_a_grid_of_prompts_by_seeds(tmp_path, capsys):
    out = tmp_path / "grid.png"
    code = main(
        [
            "sample",
            "--prompt",
            "a red circle on a blue background, top left",
            "--prompt",
            "a white square on a green background, bottom right",
            "--seed",
            "0",
            "--seed",
            "1",
            "--seed",
            "2",
            "--steps",
            "4",
            "--scale",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with Image.open(out) as grid:
        assert grid.size == (3 * 32 * 2, 2 * 32 * 2)
    assert "2 prompt(s) × 3 seed(s)" in capsys.readouterr().out


def test_sample_is_reproducible(tmp_path):
    args = ["sample", "--prompt", "a yellow triangle on a purple background, top right", "--steps", "4"]
    main([*args, "--out", str(tmp_path / "a.png")])
    main([*args, "--out", str(tmp_path / "b.png")])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_bad_arguments_get_a_clear_error(tmp_path, capsys):
    assert main(["sample", "--model", "nope", "--prompt", "x", "--out", str(tmp_path / "g.png")]) == 2
    assert "unknown model 'nope'; available: tiny" in capsys.readouterr().err
    assert main(["sample", "--prompt", "x", "--steps", "0", "--out", str(tmp_path / "g.png")]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["sample", "--prompt", "x", "--out", str(tmp_path / "g.jpg")]) == 2
    assert "--out must be a .png" in capsys.readouterr().err
