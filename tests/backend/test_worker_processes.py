"""The worker as users run it: a separate process. Killed with SIGKILL mid-run it leaves nothing
stuck and the run resumes with continuous metrics; SIGTERM checkpoints and leaves it resumable;
reader processes polling meanwhile never see "database is locked"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.backend.worker import Worker
from neighbor_grpo.storage.history import list_checkpoints, metric_series
from neighbor_grpo.storage.registry import forget_registries
from neighbor_grpo.storage.runs import get_run, request_sample, request_save, resume_run

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path, registry_backend):
    yield tmp_path / "home"
    forget_registries()


def config(model_dir, name: str, iterations: int) -> dict:
    return {
        "name": name, "model": f"tiny:{model_dir}", "iterations": iterations, "prompts_per_iteration": 2,
        "group_size": 4, "checkpoint_every": 4, "seed": 5,
        "neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 8},
        "optimizer": {"learning_rate": 1e-2, "micro_batch": 4},
        "eval": {"every": 0, "max_prompts": 1, "seeds_per_prompt": 1, "gallery_size": 1},
    }  # fmt: skip


def start_worker(home, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "neighbor_grpo", "worker", "--home", str(home), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_run_leaves_nothing_stuck_and_resume_keeps_metrics_continuous(home, model_dir):
    # Long enough that the kill lands mid-run on a fast machine too (one iteration takes ~30 ms).
    iterations = 150
    straight = queue_run(home, RunRequest(config(model_dir, "straight", iterations), start_worker=False)).run_id
    Worker(home, exit_when_idle=True).serve(handle_signals=False)
    run_id = queue_run(home, RunRequest(config(model_dir, "killed", iterations), start_worker=False)).run_id

    worker = start_worker(home)
    wait_for(lambda: list_checkpoints(home, run_id), what="training")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    killed_at = get_run(home, run_id)
    assert killed_at.status == "running"  # nobody can know yet; the heartbeat is fresh
    assert killed_at.progress_step < iterations
    resume_from = list_checkpoints(home, run_id)[-1].step

    # A new worker notices the dead one at once and resumes the run from its last checkpoint.
    restarted = start_worker(home, "--exit-when-idle")
    output = restarted.communicate(timeout=600)[0]
    assert restarted.returncode == 0, output
    assert "its worker died; resuming it" in output
    assert get_run(home, run_id).status == "finished", output
    resumed, reference = metric_series(home, run_id)["reward"], metric_series(home, straight)["reward"]
    assert [step for step, _ in resumed] == list(range(1, iterations + 1))  # no gap, no duplicate
    assert resumed[:resume_from] == reference[:resume_from]  # rows before the checkpoint untouched
    # After it the trainer recomputes them from the checkpoint: exactly what a straight run got.
    assert resumed[resume_from:] == reference[resume_from:]


def test_sigterm_checkpoints_and_leaves_the_run_resumable(home, model_dir):
    run_id = queue_run(home, RunRequest(config(model_dir, "termed", 400), start_worker=False)).run_id
    worker = start_worker(home)
    wait_for(lambda: get_run(home, run_id).progress_step >= 3, what="training")
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 0, output
    assert "SIGTERM" in output
    run = get_run(home, run_id)
    assert run.status == "interrupted" and run.progress_step < 400
    assert list_checkpoints(home, run_id)[-1].step == run.progress_step  # nothing after it to lose
    assert resume_run(home, run_id).status == "queued"


READER = """
import sys, time
from neighbor_grpo.storage import get_run, latest_metrics, list_checkpoints, list_runs, metric_series
home, deadline, loops = sys.argv[1], time.monotonic() + 600, 0  # generous: CI machines can be loaded
while time.monotonic() < deadline:
    for run in list_runs(home):
        get_run(home, run.id)
        metric_series(home, run.id, max_points=50)
        latest_metrics(home, run.id)
        list_checkpoints(home, run.id)
    loops += 1
    time.sleep(0.05)  # a busy dashboard; without any pause the readers would starve the trainer
    if list_runs(home, status="finished"):
        break
print(loops)
"""


# "database is locked" is SQLite's failure; PostgreSQL readers never wait on writers.
@pytest.mark.parametrize("registry_backend", ["sqlite"], indirect=True)
def test_readers_polling_while_the_worker_writes_never_hit_a_lock(home, model_dir):
    run_id = queue_run(home, RunRequest(config(model_dir, "busy", 20), start_worker=False)).run_id
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    worker = start_worker(home, "--exit-when-idle")
    wait_for(lambda: get_run(home, run_id).status == "running", what="the claim")
    request_sample(home, run_id)  # front ends write too, while the worker holds the run
    request_save(home, run_id)
    assert worker.wait(timeout=600) == 0, worker.stdout.read()
    for reader in readers:
        out, err = reader.communicate(timeout=600)
        assert reader.returncode == 0 and "locked" not in err, err
        assert int(out) > 3  # it really polled while training went on
    assert get_run(home, run_id).status == "finished"
