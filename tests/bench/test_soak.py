"""A short version of bench/soak.py: SIGKILLed workers lose no step and change no metric, and
readers polling beside a training worker never see "database is locked"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from neighbor_grpo.storage.registry import forget_registries

pytestmark = pytest.mark.slow

_PATH = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("ngrpo_bench_soak", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    forget_registries()


def test_killed_workers_lose_nothing_and_change_nothing(soak, tmp_path):
    result = soak.kill_soak(tmp_path, runs=2, kills=3, iterations=6, delay=(0.0, 2.0), seed=1)
    assert result["problems"] == []
    assert result["finished"] == 2 and result["left_running"] == 0 and result["equal_to_uninterrupted"]
    assert result["kills_landed"] >= 1


def test_readers_beside_a_training_worker_never_see_a_locked_database(soak, tmp_path):
    result = soak.reader_soak(tmp_path, readers=2, hz=5.0, iterations=6)
    assert result["polls"] > 0
    assert (result["database_locked"], result["other_errors"]) == (0, 0), result["examples"]
