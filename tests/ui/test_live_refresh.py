"""What a page's timer tick sends while a run trains: nothing when nothing moved, only the parts
that moved otherwise, and never a step the person did not pick."""

from __future__ import annotations

import os
import socket
import time

import gradio as gr
import pytest

from neighbor_grpo.backend import actions
from neighbor_grpo.backend.records import SampleRecord
from neighbor_grpo.storage.registry import forget_registries, open_registry
from neighbor_grpo.storage.reporter import RegistryReporter
from neighbor_grpo.storage.schema import Run
from neighbor_grpo.ui import run_detail, runs

OUT = {name: i for i, name in enumerate(run_detail.OUTPUTS)}
PLOTS = [OUT[f"plot{i}"] for i in range(len(run_detail.PLOTS))]
SKIP = gr.skip()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_HOME", raising=False)
    yield tmp_path / "home"
    forget_registries()


def live_run(home, name="live") -> tuple[int, RegistryReporter]:
    """A run that looks mid-training: running, its worker (this process) beating, some metrics
    and images at steps 1–2 already recorded."""
    run_id = actions.queue_run(home, actions.RunRequest({"name": name, "iterations": 50}, start_worker=False)).run_id
    set_run(home, run_id, status="running", started_at=time.time() - 10, heartbeat_at=time.time(),
            worker_pid=os.getpid(), progress_step=2)  # fmt: skip
    reporter = RegistryReporter(open_registry(home), run_id)
    for step in (1, 2):
        reporter.metrics(step, {"reward": step / 10, "loss": -step})
    reporter.flush()
    images(reporter, 2)
    return run_id, reporter


def set_run(home, run_id, **values):
    with open_registry(home).write() as session:
        row = session.get(Run, run_id)
        for key, value in values.items():
            setattr(row, key, value)


def images(reporter: RegistryReporter, step: int) -> None:
    reporter.samples(step, [SampleRecord(f"prompt {i // 2}", i % 2, f"samples/{step}-{i}.png", {}) for i in range(4)])


def skipped(value) -> bool:
    return isinstance(value, dict) and value == SKIP


def tick(home, run_id, shown, picked=None, follow=True):
    return run_detail.update(home, run_id, picked, follow, shown[OUT["seen"]], full=False)


def test_a_tick_with_nothing_new_sends_nothing(home):
    run_id, _ = live_run(home)
    opened = run_detail.update(home, run_id)
    assert list(opened[PLOTS[0]]["step"]) == [1, 2]
    # Plots with nothing yet get None, never an empty frame (the browser's chart would keep its types).
    assert [opened[i] is None for i in PLOTS] == [False, True, False, True, True]
    assert opened[OUT["gallery"]].count("<img") == 4 and '"iterations": 50' in opened[OUT["config"]]
    ticked = tick(home, run_id, opened)
    assert all(map(skipped, ticked)), "an unchanged tick must resend nothing"


def test_a_new_metric_step_sends_the_curves_but_not_gallery_or_config(home):
    run_id, reporter = live_run(home)
    opened = run_detail.update(home, run_id)
    reporter.metrics(3, {"reward": 0.3, "loss": -3.0})
    reporter.flush()
    set_run(home, run_id, progress_step=3)
    ticked = tick(home, run_id, opened)
    assert ticked[PLOTS[0]]["step"].max() == 3  # the training-reward plot gained step 3
    assert "step 3/50" in ticked[OUT["head"]]
    for name in ("gallery", "config", "step", "follow", "timer", "error"):
        assert skipped(ticked[OUT[name]]), name
    assert all(map(skipped, tick(home, run_id, ticked))), "and the tick after it sends nothing again"


def test_a_late_metric_of_an_earlier_step_still_counts_as_new(home):
    run_id, reporter = live_run(home)
    opened = run_detail.update(home, run_id)
    reporter.metrics(2, {"eval/reward": 0.7})  # evaluation lands after training moved on
    reporter.flush()
    ticked = tick(home, run_id, opened)
    assert set(ticked[PLOTS[1]]["metric"]) == {"eval/reward"}


def test_a_metric_new_to_a_drawn_plot_empties_it_for_one_tick_so_the_browser_rebuilds_it(home):
    run_id, reporter = live_run(home)
    reporter.metrics(2, {"eval/reward": 0.7})
    reporter.flush()
    opened = run_detail.update(home, run_id)
    reporter.metrics(3, {"eval/reward": 0.8, "eval/gold": 0.4})  # a metric the drawn chart was not built for
    reporter.flush()
    set_run(home, run_id, status="finished")  # even on the run's last tick
    emptied = tick(home, run_id, opened)
    assert emptied[PLOTS[1]] is None and emptied[OUT["timer"]].active is True
    assert set(emptied[PLOTS[0]]["metric"]) == {"reward"}  # plots whose metrics did not change: rows only
    rebuilt = tick(home, run_id, emptied)
    assert set(rebuilt[PLOTS[1]]["metric"]) == {"eval/reward", "eval/gold"} and rebuilt[OUT["timer"]].active is False
    assert all(map(skipped, tick(home, run_id, rebuilt)))


def test_the_gallery_follows_new_steps_until_the_person_picks_an_older_one(home):
    run_id, reporter = live_run(home)
    opened = run_detail.update(home, run_id)
    assert opened[OUT["follow"]] is True
    images(reporter, 4)
    followed = tick(home, run_id, opened)
    assert "data-step='4'" in followed[OUT["gallery"]]
    assert followed[OUT["step"]].value == 4 and [c[1] for c in followed[OUT["step"]].choices] == [2, 4]

    # The person picks step 2: following turns off, and a newer step does not take the gallery away.
    step_html, following = run_detail.pick_step(home, run_id, 2)
    assert "data-step='2'" in step_html and following is False
    images(reporter, 6)
    ticked = tick(home, run_id, followed, picked=2, follow=False)
    assert skipped(ticked[OUT["gallery"]])
    steps = ticked[OUT["step"]]
    assert [c[1] for c in steps.choices] == [2, 4, 6] and "value" not in steps.constructor_args
    # Picking the newest step again means "show me the newest": following resumes.
    assert run_detail.pick_step(home, run_id, 6)[1] is True


def test_a_picked_step_that_a_resume_rewound_away_gives_way_to_the_newest(home):
    run_id, reporter = live_run(home)
    images(reporter, 4)
    opened = run_detail.update(home, run_id)
    reporter.rewind(2)  # resumed from the step-2 checkpoint: step 4's images are gone
    ticked = tick(home, run_id, opened, picked=4, follow=False)
    assert "data-step='2'" in ticked[OUT["gallery"]] and ticked[OUT["follow"]] is True


def test_a_refresh_keeps_the_picked_step_and_opening_another_run_follows_again(home):
    run_id, reporter = live_run(home)
    images(reporter, 4)
    opened = run_detail.update(home, run_id)
    refreshed = run_detail.update(home, run_id, 2, False, opened[OUT["seen"]], full=True)
    assert "data-step='2'" in refreshed[OUT["gallery"]] and not skipped(refreshed[OUT["config"]])
    other, other_reporter = live_run(home, "other")
    images(other_reporter, 4)
    switched = tick(home, other, refreshed, picked=2, follow=False)  # a tick racing the run switch
    assert switched[OUT["follow"]] is True and "data-step='4'" in switched[OUT["gallery"]]
    assert not any(map(skipped, switched)), "another run: everything is sent"
    assert '"name": "other"' in switched[OUT["config"]]


def test_a_finished_run_shows_its_final_curves_gallery_and_status(home):
    run_id, reporter = live_run(home)
    opened = run_detail.update(home, run_id)
    assert opened[OUT["timer"]].active is True
    reporter.metrics(50, {"reward": 0.9, "eval/reward": 0.8})
    reporter.flush()
    images(reporter, 50)
    set_run(home, run_id, status="finished", progress_step=50, finished_at=time.time())
    final = tick(home, run_id, opened)
    assert "finished" in final[OUT["head"]] and final[OUT["timer"]].active is False
    assert final[PLOTS[0]]["step"].max() == 50 and "data-step='50'" in final[OUT["gallery"]]
    assert skipped(final[OUT["config"]])  # the config never changes under a run


def test_a_dead_worker_shows_as_interrupted_on_the_next_tick(home):
    run_id, _ = live_run(home)
    opened = run_detail.update(home, run_id)
    set_run(home, run_id, worker_pid=2**22 + 12345, worker_host=socket.gethostname(), heartbeat_at=time.time() - 60)
    ticked = tick(home, run_id, opened)
    assert "interrupted" in ticked[OUT["head"]] and ticked[OUT["timer"]].active is False
    assert "stopped at step 2" in ticked[OUT["error"]].value


def test_the_runs_table_tick_reloads_only_when_a_listed_run_moved(home):
    run_id, reporter = live_run(home)
    table, note, timer, seen = runs.reload(home)
    assert list(table["Name"]) == ["live"] and "live" in note and timer.active is True
    assert runs.reload(home, seen) == (SKIP,) * 4
    set_run(home, run_id, progress_step=3)
    moved = runs.reload(home, seen)
    assert list(moved[0]["Progress"]) == ["3/50"]
    reporter.metrics(3, {"eval/reward": 0.75})
    reporter.flush()
    rewarded = runs.reload(home, moved[3])
    assert list(rewarded[0]["Best eval reward"]) == ["0.7500"]
    set_run(home, run_id, status="finished")
    done = runs.reload(home, rewarded[3])
    assert list(done[0]["Status"]) == ["finished"] and done[2].active is False and done[1] == ""
