"""The Runs table, a run's curves, gallery, config and error, and the run controls."""

from __future__ import annotations

import time

import pytest

from neighbor_grpo.backend import actions
from neighbor_grpo.backend.actions import ActionError, RunRequest, queue_run
from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.schema import Run

from .conftest import small_config


def queued(home, model_dir, name="r", **changes) -> int:
    return queue_run(home, RunRequest(small_config(model_dir, name, **changes), start_worker=False)).run_id


def set_run(home, run_id, **values):
    with open_registry(home).write() as session:
        row = session.get(Run, run_id)
        for key, value in values.items():
            setattr(row, key, value)


def test_the_runs_table_shows_best_reward_latest_gold_and_eta(home, model_dir):
    first, second = queued(home, model_dir, "a"), queued(home, model_dir, "b", iterations=10)
    reporter = RegistryReporter(open_registry(home), first)
    for step, (reward, gold) in enumerate([(0.2, 0.5), (0.6, 0.4), (0.4, 0.3)]):
        reporter.metrics(step, {"eval/reward": reward, "eval/gold": gold, "reward": 9.0})
    reporter.flush()
    set_run(home, second, status="running", started_at=time.time() - 40, progress_step=4, progress_total=10)
    rows = {row.name: row for row in actions.list_runs(home)}
    assert [row.name for row in actions.list_runs(home)] == ["b", "a"]  # newest first
    assert (rows["a"].best_reward, rows["a"].gold, rows["a"].eta_s) == (0.6, 0.3, None)
    assert rows["b"].best_reward is None and rows["b"].eta_s == pytest.approx(60, abs=5)  # 10 s/iter × 6 left
    assert actions.any_active(home)
    set_run(home, second, status="finished")
    actions.cancel_run(home, "a")
    assert not actions.any_active(home)


def test_curves_are_downsampled_in_sql(home, model_dir):
    run_id = queued(home, model_dir)
    reporter = RegistryReporter(open_registry(home), run_id, flush_rows=10**9)
    for step in range(1, 1001):
        reporter.metrics(step, {"reward": step / 1000, "loss": -step})
    reporter.flush()
    curves = actions.run_curves(home, run_id, ["reward"], max_points=100)
    assert list(curves) == ["reward"]
    steps = [step for step, _ in curves["reward"]]
    assert 90 <= len(steps) <= 100 and steps == sorted(steps) and steps[-1] == 1000
    assert len(actions.run_curves(home, run_id, max_points=10**6)["loss"]) == 1000


def test_a_failed_run_shows_its_whole_traceback(home, model_dir):
    run_id = queued(home, model_dir)
    run = actions.get_run(home, run_id)
    (run.folder / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    set_run(home, run_id, status="failed", error="RuntimeError: out of memory")
    assert "Traceback" in actions.run_error(home, run_id)
    assert actions.list_runs(home)[0].note == "RuntimeError: out of memory"


def test_resume_and_delete_go_through_the_registry_rules(home, model_dir, monkeypatch):
    run_id = queued(home, model_dir)
    with pytest.raises(ActionError, match="only interrupted, failed or cancelled runs resume"):
        actions.resume_run(home, run_id, start_worker=False)
    actions.cancel_run(home, run_id)
    info, pid = actions.resume_run(home, run_id, start_worker=False)
    assert (info.status, pid) == ("queued", None)
    folder = info.folder
    assert actions.delete_run(home, run_id).name == "r"
    assert not folder.exists() and actions.list_runs(home) == []
    with pytest.raises(ActionError, match="no run"):
        actions.show_run(home, run_id)


def test_a_trained_run_reads_back_curves_gallery_groups_and_config(trained):
    home, run_id = trained
    detail = actions.show_run(home, run_id)
    assert detail.info.status == "finished"
    assert [c.step for c in detail.checkpoints] == [1, 2]
    curves = actions.run_curves(home, run_id, list(actions.history.MAIN_CURVES))
    assert {"reward", "eval/reward", "eval/gold", "loss", "s_per_iter"} <= set(curves)
    gallery = actions.run_gallery(home, run_id)
    assert (gallery.step, gallery.steps) == (2, [0, 1, 2])
    # 2 prompts × 2 seeds: two groups of two images, each group one prompt on different seeds.
    assert [len(group.images) for group in gallery.groups] == [2, 2]
    assert all(len({image.seed for image in group.images}) == 2 for group in gallery.groups)
    assert all(image.path.is_file() and "shapes_fidelity" in image.scores for g in gallery.groups for image in g.images)
    assert actions.run_gallery(home, run_id, step=0).step == 0
    with pytest.raises(ActionError, match="no evaluation images at step 7"):
        actions.run_gallery(home, run_id, step=7)
    assert actions.run_config(home, run_id)["group_size"] == 4


def test_the_estimate_scales_recorded_time_per_iteration_to_the_new_batch(trained, model_dir):
    home, run_id = trained
    config = actions.run_config(home, run_id)
    same = actions.estimate_iteration_time(home, config)
    double = actions.estimate_iteration_time(home, {**config, "group_size": 8, "iterations": 10})
    assert same.seconds_per_iteration > 0 and "1 earlier" in same.basis
    assert double.seconds_per_iteration == pytest.approx(2 * same.seconds_per_iteration)
    assert double.total_seconds == pytest.approx(10 * double.seconds_per_iteration)
    assert actions.estimate_iteration_time(home, {**config, "algorithm": "sde_grpo"}) is None
