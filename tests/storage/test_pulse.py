"""Pulses: the cheap reads polling pages compare to decide what to reload."""

from __future__ import annotations

from neighbor_grpo.backend.records import SampleRecord
from neighbor_grpo.storage.pulse import run_pulse, runs_pulse
from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.reporter import RegistryReporter

from .conftest import dead_pid, running_values, set_run


def test_a_run_pulse_moves_with_every_metric_or_image_row_and_only_then(home, queue):
    run_id = queue()
    reporter = RegistryReporter(open_registry(home), run_id)
    empty = run_pulse(home, run_id)
    assert (empty.metrics, empty.samples, empty.active) == ((0, None), (0, None), True)
    reporter.metrics(3, {"reward": 0.1, "loss": 0.2})
    reporter.flush()
    assert run_pulse(home, run_id).metrics == (2, 3) and run_pulse(home, run_id) == run_pulse(home, run_id)
    reporter.metrics(2, {"eval/reward": 0.5})  # late: an earlier step gains a row
    reporter.flush()
    reporter.samples(3, [SampleRecord("a cat", 0, "samples/a.png", {})])
    late = run_pulse(home, run_id)
    assert (late.metrics, late.samples) == ((3, 3), (1, 3))
    reporter.rewind(2)  # a resume from the step-2 checkpoint drops step 3
    assert (run_pulse(home, run_id).metrics, run_pulse(home, run_id).samples) == ((1, 2), (0, None))


def test_pulses_settle_dead_workers_and_count_active_runs_beyond_the_listed_ones(home, queue):
    old, new = queue("old"), queue("new")
    set_run(home, new, status="finished")
    set_run(home, old, **running_values(dead_pid(), heartbeat_age=120))
    assert run_pulse(home, old).status == "interrupted"
    set_run(home, old, status="queued")  # resumed: active, though not among the newest one listed
    table = runs_pulse(home, limit=1)
    assert [row[1] for row in table.rows] == ["new"] and table.active
    set_run(home, old, status="cancelled")
    assert not runs_pulse(home, limit=1).active
