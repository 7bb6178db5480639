"""No run stays "running" after its worker died: a stale heartbeat plus a dead process marks it
interrupted (resumable), or cancelled if that was asked; live or merely slow workers are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neighbor_grpo.storage.claims import claim_next_run
from neighbor_grpo.storage.liveness import ABANDONED_AFTER_S, WorkerIdentity, pid_alive, recover_stale_runs
from neighbor_grpo.storage.registry import open_registry
from neighbor_grpo.storage.runs import cancel_run, get_run, list_runs

from .conftest import dead_pid, running_values, set_run


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="zombies are told apart through /proc")
def test_pid_alive_tells_live_dead_and_unreaped_processes_apart():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(1.0)  # exited, not yet reaped: a zombie still answers kill(pid, 0)
    assert not pid_alive(child.pid)
    child.wait()


def test_stale_heartbeat_and_dead_pid_marks_interrupted(home, queue):
    run_id = queue()
    set_run(home, run_id, progress_step=7, **running_values(dead_pid(), heartbeat_age=120))
    [run] = list_runs(home)  # any front end listing runs settles them
    assert run.status == "interrupted"
    assert "step 7" in run.error and "resume" in run.error


def test_a_cancelled_run_whose_worker_died_ends_cancelled(home, queue):
    run_id = queue()
    set_run(home, run_id, **running_values(os.getpid()))
    cancel_run(home, run_id)
    set_run(home, run_id, **running_values(dead_pid(), heartbeat_age=120))
    assert get_run(home, run_id).status == "cancelled"


def test_live_or_recently_seen_workers_are_left_alone(home, queue):
    alive, fresh = queue("alive"), queue("fresh")
    set_run(home, alive, **running_values(os.getpid(), heartbeat_age=120))  # slow, but its process lives
    set_run(home, fresh, **running_values(dead_pid(), heartbeat_age=1))  # dead, but give it the benefit
    assert recover_stale_runs(open_registry(home)) == []
    assert {run.status for run in list_runs(home)} == {"running"}
    assert recover_stale_runs(open_registry(home), stale_after=0.0) == [fresh]  # what a starting worker does


def test_a_long_silent_worker_is_dead_even_on_another_host_or_with_a_reused_pid(home, queue):
    other_host, reused = queue("other"), queue("reused")
    set_run(home, other_host, **running_values(12345, heartbeat_age=60, host="elsewhere"))
    set_run(home, reused, **running_values(os.getpid(), heartbeat_age=ABANDONED_AFTER_S + 1))
    assert recover_stale_runs(open_registry(home)) == [reused]
    set_run(home, other_host, heartbeat_at=time.time() - ABANDONED_AFTER_S - 1)
    assert recover_stale_runs(open_registry(home)) == [other_host]


CLAIMER = """
import json, sys
from neighbor_grpo.storage.claims import claim_next_run
from neighbor_grpo.storage.liveness import WorkerIdentity
from neighbor_grpo.storage.registry import open_registry
registry, me, claimed = open_registry(sys.argv[1]), WorkerIdentity.current(), []
while (run_id := claim_next_run(registry, me)) is not None:
    claimed.append(run_id)
print(json.dumps(claimed))
"""


def test_claims_are_atomic_across_processes(home, queue):
    import json

    ids = [queue(f"r{i}") for i in range(12)]
    claimers = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(home)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    claimed = [json.loads(process.communicate(timeout=60)[0]) for process in claimers]
    assert sorted(claimed[0] + claimed[1]) == ids  # each run taken exactly once
    assert claim_next_run(open_registry(home), WorkerIdentity.current()) is None
