"""RegistryReporter: metrics are batched but never lost at a checkpoint, resume rewinds cleanly,
and control flags reach the trainer once (save, sample) or for good (cancel, stop)."""

from __future__ import annotations

import os

import pytest

from neighbor_grpo.backend.records import CheckpointRecord, SampleRecord
from neighbor_grpo.storage.history import latest_metrics, list_checkpoints, list_samples, metric_series
from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.runs import cancel_run, get_run, request_sample, request_save

from .conftest import running_values, set_run


@pytest.fixture
def run_id(home, queue):
    run_id = queue()
    set_run(home, run_id, **running_values(os.getpid()))
    return run_id


def reporter(home, run_id, **settings) -> RegistryReporter:
    return RegistryReporter(open_registry(home), run_id, **settings)


def checkpoint(home, run_id, step: int) -> CheckpointRecord:
    folder = f"checkpoints/step-{step:06d}"
    (get_run(home, run_id).folder / folder).mkdir(parents=True)
    return CheckpointRecord(step=step, folder=folder, files={})


def test_metrics_are_buffered_until_enough_rows_or_a_checkpoint(home, run_id):
    report = reporter(home, run_id, flush_rows=10, flush_seconds=3600)
    for step in range(1, 4):
        report.metrics(step, {"reward": step / 10, "loss": 1.0})
    assert metric_series(home, run_id) == {}  # readers see nothing yet: no write per step
    report.checkpoint(checkpoint(home, run_id, 3))
    assert metric_series(home, run_id)["reward"] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    for step in range(4, 9):
        report.metrics(step, {"reward": 0.0, "loss": 1.0})  # the 10th row triggers a flush
    assert [step for step, _ in metric_series(home, run_id)["loss"]] == list(range1(8))


def range1(last: int) -> range:
    return range(1, last + 1)


def test_metrics_flush_after_the_time_limit(home, run_id):
    report = reporter(home, run_id, flush_rows=1000, flush_seconds=0.0)
    report.metrics(1, {"reward": 0.5})
    assert latest_metrics(home, run_id) == {"reward": (1, 0.5)}


def test_a_metric_logged_twice_keeps_its_last_value(home, run_id):
    report = reporter(home, run_id)
    report.metrics(1, {"reward": 0.1})
    report.flush()
    report.metrics(1, {"reward": 0.2})
    report.flush()
    assert metric_series(home, run_id) == {"reward": [(1, 0.2)]}


def test_rewind_forgets_everything_after_the_checkpoint(home, run_id):
    report = reporter(home, run_id, flush_rows=1000, flush_seconds=3600)
    for step in range1(4):
        report.metrics(step, {"reward": float(step)})
    report.checkpoint(checkpoint(home, run_id, 2))
    report.checkpoint(checkpoint(home, run_id, 4))
    report.samples(3, [SampleRecord(prompt="p", seed=1, path="samples/3.png", scores={"r": 1.0})])
    report.metrics(5, {"reward": 5.0})  # still in the buffer when the crash comes
    report.rewind(2)
    report.flush()
    assert metric_series(home, run_id)["reward"] == [(1, 1.0), (2, 2.0)]
    assert [c.step for c in list_checkpoints(home, run_id)] == [2]
    assert list_samples(home, run_id) == []
    assert get_run(home, run_id).progress_step == 2


def test_checkpoint_rows_follow_the_folders_on_disk(home, run_id):
    report = reporter(home, run_id)
    for step in (3, 6):
        report.checkpoint(checkpoint(home, run_id, step))
    (get_run(home, run_id).folder / "checkpoints" / "step-000003").rmdir()  # pruned by the trainer
    report.checkpoint(CheckpointRecord(step=6, folder="checkpoints/step-000006", files={"a": "1"}))  # save now
    assert [(c.step, c.files) for c in list_checkpoints(home, run_id)] == [(6, {"a": "1"})]


def test_progress_is_throttled_but_the_last_step_always_lands(home, run_id):
    report = reporter(home, run_id, progress_seconds=3600)
    report.progress(1, 10)
    report.progress(2, 10)
    assert get_run(home, run_id).progress_step == 1
    report.progress(10, 10)
    assert (get_run(home, run_id).progress_step, get_run(home, run_id).progress_total) == (10, 10)


def test_save_and_sample_are_consumed_cancel_and_stop_persist(home, run_id):
    report = reporter(home, run_id)
    assert report.poll() == type(report.poll())()  # nothing asked
    request_save(home, run_id)
    request_sample(home, run_id)
    first = report.poll()
    assert (first.save_now, first.sample_now) == (True, True)
    assert (report.poll().save_now, report.poll().sample_now) == (False, False)
    cancel_run(home, run_id)
    assert report.poll().cancel and report.poll().cancel
    report.request_stop()
    assert report.poll().stop
