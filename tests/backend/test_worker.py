"""The worker drives the real trainer on a tiny random model, in this process: runs finish with
everything recorded, bad configs and crashes fail only their run, and cancel / save now /
sample now / stop from a front end reach the trainer."""

from __future__ import annotations

import time

import pytest

from neighbor_grpo.backend.actions import RunRequest, queue_run
from neighbor_grpo.backend.worker import Worker, build_trainer
from neighbor_grpo.storage.history import list_checkpoints, list_samples, metric_series
from neighbor_grpo.storage.registry import forget_registries, open_registry
from neighbor_grpo.storage.runs import (
    cancel_run,
    export_lora,
    get_run,
    request_sample,
    request_save,
    resume_run,
)
from neighbor_grpo.storage.schema import Run


@pytest.fixture
def home(tmp_path, registry_backend):
    yield tmp_path / "home"
    forget_registries()


def small_config(model_dir, name: str = "t", **changes) -> dict:
    return {
        "name": name, "model": f"tiny:{model_dir}", "iterations": 6, "prompts_per_iteration": 2, "group_size": 4,
        "checkpoint_every": 3, "seed": 3,
        "neighbor": {"steps": 4, "anchors": 2, "trained_steps": 2},
        "lora": {"rank": 4, "alpha": 8},
        "optimizer": {"learning_rate": 1e-2, "micro_batch": 3},
        "eval": {"every": 3, "max_prompts": 2, "seeds_per_prompt": 1, "gallery_size": 2},
        **changes,
    }  # fmt: skip


class Hooked:
    """The worker's reporter, calling `on_step(step)` after each iteration's progress report."""

    def __init__(self, inner, on_step):
        self.inner, self.on_step = inner, on_step

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def progress(self, step: int, total: int) -> None:
        self.inner.progress(step, total)
        self.on_step(step)


def serve(home, on_step=None, worker: Worker | None = None) -> Worker:
    def factory(config, run_dir, reporter, device):
        return build_trainer(config, run_dir, Hooked(reporter, on_step) if on_step else reporter, device)

    worker = worker or Worker(home, exit_when_idle=True, trainer_factory=factory)
    worker.serve(handle_signals=False)
    return worker


def train_steps(home, run_id) -> list[int]:
    return [step for step, _ in metric_series(home, run_id)["reward"]]


def test_a_queued_run_trains_to_the_end_with_everything_recorded(home, model_dir, tmp_path):
    run_id = queue_run(home, RunRequest(small_config(model_dir), start_worker=False)).run_id
    serve(home)
    run = get_run(home, run_id)
    assert (run.status, run.progress_step, run.progress_total, run.error) == ("finished", 6, 6, None)
    assert run.started_at <= run.finished_at <= time.time()
    assert train_steps(home, run_id) == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in metric_series(home, run_id)["eval/reward"]] == [0, 3, 6]
    checkpoints = list_checkpoints(home, run_id)
    assert [c.step for c in checkpoints] == [3, 6]
    assert all(c.lora_path.is_file() and c.sha256 for c in checkpoints)
    samples = list_samples(home, run_id)
    assert samples and all(s.step == 6 and s.path.is_file() for s in samples)
    exported = export_lora(home, run_id, out=tmp_path / "lora.safetensors")
    assert exported.read_bytes() == checkpoints[-1].lora_path.read_bytes()


def test_a_malformed_config_fails_that_run_and_the_worker_goes_on(home, model_dir):
    registry = open_registry(home)
    with registry.write() as session:  # e.g. queued by an older version, bypassing validation
        session.add(
            Run(name="bad", status="queued", config={"name": "bad", "group_size": 1}, model="tiny", rewards=[],
                algorithm="neighbor_grpo", folder="runs/bad", created_at=time.time(), progress_step=0)
        )  # fmt: skip
    good = queue_run(home, RunRequest(small_config(model_dir, iterations=2), start_worker=False)).run_id
    serve(home)
    bad = get_run(home, "bad")
    assert bad.status == "failed"
    assert bad.error.startswith("ConfigError: group_size must be in [2, 4096], got 1")
    assert "Traceback" in (bad.folder / "error.txt").read_text()
    assert get_run(home, good).status == "finished"


def test_a_crashing_run_keeps_its_records_shows_the_error_and_resumes(home, model_dir):
    run_id = queue_run(home, RunRequest(small_config(model_dir), start_worker=False)).run_id

    def crash(step):
        if step == 5:
            raise RuntimeError("CUDA out of memory (pretend)")

    serve(home, crash)
    run = get_run(home, run_id)
    assert (run.status, run.error) == ("failed", "RuntimeError: CUDA out of memory (pretend)")
    assert train_steps(home, run_id) == [1, 2, 3, 4, 5]  # kept, though past the last checkpoint
    assert [c.step for c in list_checkpoints(home, run_id)] == [3]

    resume_run(home, run_id)
    serve(home)
    assert get_run(home, run_id).status == "finished"
    assert train_steps(home, run_id) == [1, 2, 3, 4, 5, 6]


def test_cancel_from_a_front_end_checkpoints_and_ends_cancelled(home, model_dir):
    run_id = queue_run(home, RunRequest(small_config(model_dir), start_worker=False)).run_id
    serve(home, lambda step: step == 2 and cancel_run(home, run_id))
    run = get_run(home, run_id)
    assert (run.status, run.progress_step) == ("cancelled", 2)
    assert [c.step for c in list_checkpoints(home, run_id)] == [2]


def test_save_now_and_sample_now_reach_the_trainer(home, model_dir):
    run_id = queue_run(home, RunRequest(small_config(model_dir), start_worker=False)).run_id

    def ask(step):
        if step == 1:
            request_save(home, run_id)
            request_sample(home, run_id)

    serve(home, ask)
    assert [c.step for c in list_checkpoints(home, run_id)] == [2, 3, 6]
    assert [step for step, _ in metric_series(home, run_id)["eval/reward"]] == [0, 2, 3, 6]
    assert list_samples(home, run_id, step=2)


def test_a_stopped_worker_leaves_the_run_resumable_with_continuous_metrics(home, model_dir):
    straight = queue_run(home, RunRequest(small_config(model_dir, "straight"), start_worker=False)).run_id
    serve(home)
    run_id = queue_run(home, RunRequest(small_config(model_dir, "stopped"), start_worker=False)).run_id
    worker = Worker(home, exit_when_idle=True)
    worker.trainer_factory = lambda c, d, r, dev: build_trainer(
        c, d, Hooked(r, lambda step: step == 4 and worker.request_stop()), dev
    )
    serve(home, worker=worker)
    assert (get_run(home, run_id).status, get_run(home, run_id).progress_step) == ("interrupted", 4)

    resume_run(home, run_id)
    serve(home)
    assert get_run(home, run_id).status == "finished"
    assert metric_series(home, run_id)["reward"] == metric_series(home, straight)["reward"]


def test_the_heartbeat_runs_on_its_own_and_stops_a_run_taken_away(home):
    from neighbor_grpo.backend.worker import Heartbeat
    from neighbor_grpo.storage.claims import claim_next_run
    from neighbor_grpo.storage.reporter import RegistryReporter

    run_id = queue_run(home, RunRequest({"name": "beat", "iterations": 3}, start_worker=False)).run_id
    worker = Worker(home)
    assert claim_next_run(worker.registry, worker.identity) == run_id
    reporter = RegistryReporter(worker.registry, run_id)
    heartbeat = Heartbeat(worker, run_id, reporter, every=0.05)
    claimed_at = get_run(home, run_id).heartbeat_at
    heartbeat.start()
    time.sleep(0.5)  # the trainer is busy (loading a model, a long rollout): no progress calls
    assert get_run(home, run_id).heartbeat_at > claimed_at
    with worker.registry.write() as session:  # a front end declared the worker dead meanwhile
        session.get(Run, run_id).status = "interrupted"
    heartbeat.join(timeout=5)
    assert reporter.poll().stop  # the trainer checkpoints and returns instead of racing a new worker
