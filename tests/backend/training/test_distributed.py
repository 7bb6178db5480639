"""Training on two processes (torchrun, gloo on CPU), as a worker with --nproc-per-node 2 runs it:
the weights equal a one-process run's with the same global batch and seed, and a rank killed
mid-run fails the run with that rank named, after which resume finishes it."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neighbor_grpo.backend.actions import RunRequest
from neighbor_grpo.backend.actions import queue_run as queue_request
from neighbor_grpo.backend.training.checkpoint import OPTIMIZER, WEIGHTS
from neighbor_grpo.backend.worker import Worker
from neighbor_grpo.storage.history import list_checkpoints, metric_series
from neighbor_grpo.storage.registry import forget_registries
from neighbor_grpo.storage.runs import cancel_run, get_run, resume_run

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_DATABASE_URL", raising=False)
    yield tmp_path / "home"
    forget_registries()


def config(model_dir, name: str, iterations: int, checkpoint_every: int) -> dict:
    return {
        "name": name, "model": f"tiny:{model_dir}", "iterations": iterations, "prompts_per_iteration": 2,
        "group_size": 4, "checkpoint_every": checkpoint_every, "seed": 7,
        "neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 8},
        "optimizer": {"learning_rate": 1e-2, "micro_batch": 3},
        "eval": {"every": 0, "max_prompts": 1, "seeds_per_prompt": 1, "gallery_size": 1},
    }  # fmt: skip


def queue_run(home, config: dict) -> int:
    return queue_request(home, RunRequest(config, start_worker=False)).run_id


def checkpoint_folder(home, run_id: int, step: int) -> Path:
    return next(c for c in list_checkpoints(home, run_id) if c.step == step).folder


def weights(home, run_id: int, step: int) -> dict:
    return load_file(checkpoint_folder(home, run_id, step) / WEIGHTS)


def serve_two_processes_until_interrupted(home, run_id: int, interrupt, timeout: float = 240) -> None:
    """A worker with --nproc-per-node 2 trains the run; `interrupt()` runs once its first
    checkpoint exists, and the worker is waited for."""
    worker = Worker(home, exit_when_idle=True, processes=2)
    serving = threading.Thread(target=worker.serve, kwargs={"handle_signals": False})
    serving.start()
    deadline = time.monotonic() + timeout
    while not list_checkpoints(home, run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    interrupt()
    serving.join(timeout=timeout)


def test_two_processes_train_the_same_weights_as_one(home, model_dir):
    one = queue_run(home, config(model_dir, "one", 3, 3))
    Worker(home, exit_when_idle=True, processes=1).serve(handle_signals=False)
    two = queue_run(home, config(model_dir, "two", 3, 3))
    Worker(home, exit_when_idle=True, processes=2).serve(handle_signals=False)

    assert get_run(home, two).status == "finished", get_run(home, two).error
    assert (get_run(home, two).folder / "ranks" / "torchrun.log").is_file()  # really 2 processes
    single, double = weights(home, one, 3), weights(home, two, 3)
    assert single.keys() == double.keys()
    # Training moved the weights (LoRA B starts at zero), and both runs moved them alike, up to
    # the order of float sums.
    assert max(double[k].abs().max().item() for k in double if "lora_B" in k) > 1e-3
    for key in single:
        assert (single[key] - double[key]).abs().max().item() < 1e-4, key
    # Rank 0 alone reported: one value per step, averaged over both shards.
    assert [step for step, _ in metric_series(home, two)["reward"]] == [1, 2, 3]


def rank_pid(home: Path, rank: int) -> int | None:
    """The process of `rank` in a torchrun launch serving `home` (read from /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        ours = b"backend.training.launch" in command and str(home).encode() in command
        if ours and f"\0RANK={rank}\0".encode() in b"\0" + environment:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank's process through /proc")
def test_a_killed_rank_fails_the_run_naming_it_and_resume_finishes(home, model_dir):
    run_id = queue_run(home, config(model_dir, "killed", 16, 2))

    def kill_rank_1():
        pid = rank_pid(home, 1)
        assert pid is not None, "rank 1 not found"
        os.kill(pid, signal.SIGKILL)

    serve_two_processes_until_interrupted(home, run_id, kill_rank_1)

    run = get_run(home, run_id)
    assert run.status == "failed" and run.progress_step < 16
    assert "rank 1" in run.error and "SIGKILL" in run.error, run.error
    assert "rank 1" in (run.folder / "error.txt").read_text()

    resume_run(home, run_id)
    Worker(home, exit_when_idle=True, processes=2).serve(handle_signals=False)
    run = get_run(home, run_id)
    assert (run.status, run.progress_step) == ("finished", 16), run.error
    assert [step for step, _ in metric_series(home, run_id)["reward"]] == list(range(1, 17))


def full_config(model_dir, name: str, fsdp: bool) -> dict:
    """Full fine-tuning (every transformer weight trained), checkpointed every iteration."""
    data = config(model_dir, name, 4, 1)
    data.update(lora={"enabled": False}, distributed={"fsdp": fsdp}, keep_checkpoints=4)
    data["optimizer"]["learning_rate"] = 1e-3
    return data


def test_fsdp_trains_what_one_process_trains_and_resumes_after_a_stop(home, model_dir):
    one = queue_run(home, full_config(model_dir, "one", fsdp=False))
    Worker(home, exit_when_idle=True, processes=1).serve(handle_signals=False)
    sharded = queue_run(home, full_config(model_dir, "sharded", fsdp=True))
    # Rank 0 sees the cancel at the next iteration; every rank then saves and stops.
    serve_two_processes_until_interrupted(home, sharded, lambda: cancel_run(home, sharded))
    stopped = get_run(home, sharded)
    assert stopped.status == "cancelled" and stopped.progress_step < 4, (stopped.status, stopped.error)
    # Really 2 processes, each holding about half of the transformer.
    held = re.findall(r"FSDP rank (\d): holds (\d+) of (\d+)", (stopped.folder / "ranks" / "torchrun.log").read_text())
    assert sorted(rank for rank, _, _ in held) == ["0", "1"], held
    assert all(int(local) <= int(total) * 0.55 for _, local, total in held), held
    resume_run(home, sharded)
    Worker(home, exit_when_idle=True, processes=2).serve(handle_signals=False)
    assert get_run(home, sharded).status == "finished", get_run(home, sharded).error

    # The same files, keys and values as the unsharded run's, at the first step and after the
    # resume: the gathered weights and the optimizer state (Adam's moments, restored from the
    # checkpoint on the resume, shape step 4's update).
    for step in (1, 4):
        single, double = weights(home, one, step), weights(home, sharded, step)
        assert single.keys() == double.keys()
        assert max((single[k] - double[k]).abs().max().item() for k in single) < 1e-5, step
    moved = weights(home, one, 4)
    start = load_file(model_dir / "model.safetensors")
    assert max((moved[k] - start[f"transformer.{k}"]).abs().max().item() for k in moved) > 1e-3
    single_opt, double_opt = optimizer_state(home, one, 4), optimizer_state(home, sharded, 4)
    assert single_opt["param_groups"] == double_opt["param_groups"]
    assert single_opt["state"].keys() == double_opt["state"].keys()
    for index, moments in single_opt["state"].items():
        assert float(double_opt["state"][index]["step"]) == float(moments["step"]) == 4.0
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(moments[name], double_opt["state"][index][name], rtol=1e-3, atol=1e-9), (index, name)
    assert [step for step, _ in metric_series(home, sharded)["reward"]] == [1, 2, 3, 4]


def optimizer_state(home, run_id: int, step: int) -> dict:
    return torch.load(checkpoint_folder(home, run_id, step) / OPTIMIZER, weights_only=True)
