"""`ngrpo runs ...` and `ngrpo worker`: what a user types, and what scripts read (--json)."""

from __future__ import annotations

import json

import pytest
import torch

from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.backend.cli import main
from neighbor_grpo.backend.models.tiny import TinyConfig, TinyFlowModel
from neighbor_grpo.storage.registry import forget_registries
from neighbor_grpo.storage.runs import get_run, list_runs


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A registry with one finished run (trained by `ngrpo worker`) and one queued run."""
    torch.manual_seed(0)
    model = tmp_path_factory.mktemp("tiny")
    TinyFlowModel(TinyConfig(num_layers=1)).save(model)
    home = tmp_path_factory.mktemp("home")
    queue_run(home, RunRequest({
        "name": "done", "model": f"tiny:{model}", "iterations": 2, "prompts_per_iteration": 1, "group_size": 2,
        "checkpoint_every": 2, "neighbor": {"steps": 2, "anchors": 1, "trained_steps": 1}, "lora": {"rank": 2},
        "eval": {"every": 0, "max_prompts": 1, "seeds_per_prompt": 1, "gallery_size": 1},
    }, start_worker=False))  # fmt: skip
    assert main(["worker", "--home", str(home), "--exit-when-idle"]) == 0
    queue_run(home, RunRequest({"name": "waiting", "iterations": 3}, start_worker=False))
    yield home
    forget_registries()


def ngrpo(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_run_newest_first(trained_home, capsys):
    code, out, _ = ngrpo(capsys, "runs", "list", "--home", str(trained_home))
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "NAME", "STATUS"]
    assert lines[1].split()[1:4] == ["waiting", "queued", "0/3"]
    assert lines[2].split()[1:4] == ["done", "finished", "2/2"]
    code, out, _ = ngrpo(capsys, "runs", "list", "--home", str(trained_home), "--json", "--status", "finished")
    assert [(run["name"], run["status"]) for run in json.loads(out)] == [("done", "finished")]


def test_show_json_has_progress_metrics_and_checkpoints(trained_home, capsys):
    code, out, _ = ngrpo(capsys, "runs", "show", "done", "--home", str(trained_home), "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["status"], shown["progress_step"]) == ("finished", 2)
    assert shown["latest_metrics"]["reward"]["step"] == 2
    assert [c["step"] for c in shown["checkpoints"]] == [2] and shown["checkpoints"][0]["sha256"]
    code, out, _ = ngrpo(capsys, "runs", "show", "done", "--home", str(trained_home))
    assert "checkpoint step 2" in out and "reward =" in out


def test_export_writes_the_lora(trained_home, capsys, tmp_path):
    code, out, _ = ngrpo(capsys, "runs", "export", "done", "--home", str(trained_home), "--out", str(tmp_path))
    assert out.strip().endswith("done-step2.safetensors")
    assert code == 0 and (tmp_path / "done-step2.safetensors").is_file()


def test_cancel_resume_and_delete(trained_home, capsys):
    home = str(trained_home)
    assert ngrpo(capsys, "runs", "cancel", "waiting", "--home", home)[1].strip().endswith("cancelled")
    assert ngrpo(capsys, "runs", "resume", "waiting", "--home", home, "--no-worker")[0] == 0
    assert get_run(trained_home, "waiting").status == "queued"
    code, _, err = ngrpo(capsys, "runs", "delete", "waiting", "--home", home)  # stdin is not a terminal
    assert code == 2 and "--yes" in err
    assert ngrpo(capsys, "runs", "delete", "waiting", "--home", home, "--yes")[0] == 0
    assert [run.name for run in list_runs(trained_home)] == ["done"]


def test_mistakes_get_one_clear_line(trained_home, capsys):
    code, _, err = ngrpo(capsys, "runs", "show", "nope", "--home", str(trained_home))
    assert code == 2 and err.strip() == "ngrpo runs: error: no run 'nope'; `ngrpo runs list` shows them"
    code, _, err = ngrpo(capsys, "runs", "resume", "done", "--home", str(trained_home))
    assert code == 2 and "queue a new run" in err
