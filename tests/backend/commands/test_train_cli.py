"""`ngrpo train` as a user runs it: foreground through the registry, or queued."""

from __future__ import annotations

import pytest

from neighbor_grpo.backend.cli import main
from neighbor_grpo.storage import get_run, list_checkpoints, list_runs, metric_series

pytestmark = pytest.mark.slow


SMALL = ["--set", "iterations=4", "--set", "prompts_per_iteration=2", "--set", "group_size=4",
         "--set", "checkpoint_every=2", "--set", "neighbor.steps=3", "--set", "neighbor.trained_steps=2",
         "--set", "neighbor.anchors=2", "--set", "eval.max_prompts=2", "--set", "eval.seeds_per_prompt=1",
         "--set", "lora.rank=4", "--set", "lora.alpha=4"]  # fmt: skip


def test_foreground_training_is_recorded_in_the_registry(model_dir, tmp_path, capsys):
    home = tmp_path / "home"
    code = main(["train", "--config", "configs/tiny_neighbor_grpo.yaml", "--home", str(home),
                 "--set", f"model=tiny:{model_dir}", "--name", "cli-run", *SMALL])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "finished at iteration 4" in out
    run = get_run(home, "cli-run")
    assert run.status == "finished" and run.progress_step == 4
    assert [step for step, _ in metric_series(home, run.id)["reward"]] == [1, 2, 3, 4]
    lora = next(c for c in list_checkpoints(home, run.id) if c.step == 4).lora_path
    assert (run.folder / lora).is_file()

    # The exported LoRA changes what `ngrpo sample --lora` draws; strength 0 is the base model.
    prompt = ["--model", f"tiny:{model_dir}", "--prompt", "a red circle on a blue background, top left", "--steps", "3"]
    main(["sample", *prompt, "--out", str(tmp_path / "base.png")])
    main(["sample", *prompt, "--lora", str(run.folder / lora), "--out", str(tmp_path / "lora.png")])
    main(
        [
            "sample",
            *prompt,
            "--lora",
            str(run.folder / lora),
            "--lora-strength",
            "0",
            "--out",
            str(tmp_path / "zero.png"),
        ]
    )
    assert (tmp_path / "lora.png").read_bytes() != (tmp_path / "base.png").read_bytes()
    assert (tmp_path / "zero.png").read_bytes() == (tmp_path / "base.png").read_bytes()


def test_bad_overrides_and_configs_fail_clearly(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert main(["train", "--config", "configs/tiny_neighbor_grpo.yaml", "--home", home,
                 "--set", "neighbor.sigma_p=2"]) == 2  # fmt: skip
    assert "neighbor.sigma_p must be in (0, 1)" in capsys.readouterr().err
    assert main(["train", "--config", "configs/missing.yaml", "--home", home]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["train", "--config", "configs/tiny_neighbor_grpo.yaml", "--home", home, "--set", "oops"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err
    # A learned reward without its weights fails before any run exists, naming the file to provide.
    assert main(["train", "--config", "configs/tiny_neighbor_grpo.yaml", "--home", home,
                 "--set", 'rewards=["pickscore"]', "--queue"]) == 2  # fmt: skip
    assert "needs the PickScore model folder" in capsys.readouterr().err
    assert list_runs(home) == []
