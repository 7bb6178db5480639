"""A user's registry survives upgrades: migrations build the schema from nothing and from the
previous revision (keeping the runs and metrics already there), and the models match them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from neighbor_grpo.storage.registry import SCHEMA_HEAD, Registry, RegistryError, alembic_config, open_registry
from neighbor_grpo.storage.runs import get_run, request_save
from neighbor_grpo.storage.schema import Base

from .conftest import running_values, set_run


def test_head_constant_matches_the_newest_migration():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_empty_database_upgrades_to_a_schema_equal_to_the_models(home):
    registry = open_registry(home)
    assert registry.revision() == SCHEMA_HEAD
    assert {"runs", "metrics", "samples", "checkpoints", "prompt_sets"} <= set(
        inspect(registry.engine).get_table_names()
    )
    with registry.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        if registry.dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def insert_0001_data(registry: Registry) -> None:
    with registry.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, name, status, config, model, rewards, algorithm, folder, created_at,"
                " progress_step) VALUES (1, 'old', 'queued', '{\"name\": \"old\"}', 'tiny', '[]', 'neighbor_grpo',"
                " 'runs/0001-old', 1.0, 3)"
            )
        )
        # A registry from before 0002 may hold a step twice; the newest value must survive.
        for value in (0.1, 0.2, 0.3):
            connection.execute(
                text("INSERT INTO metrics (run_id, step, name, value, wall_time) VALUES (1, 3, 'reward', :v, 1.0)"),
                {"v": value},
            )


def test_previous_revision_upgrades_keeping_runs_and_metrics(home):
    registry = Registry(home)
    registry.upgrade("0001")
    assert registry.revision() == "0001"
    insert_0001_data(registry)
    registry.dispose()

    upgraded = open_registry(home)
    assert upgraded.revision() == SCHEMA_HEAD
    run = get_run(home, "old")
    assert (run.status, run.progress_step, run.cancel_requested) == ("queued", 3, False)
    with upgraded.engine.connect() as connection:
        rows = connection.execute(text("SELECT step, value FROM metrics WHERE run_id = 1")).all()
    assert rows == [(3, 0.3)]
    with pytest.raises(IntegrityError), upgraded.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO metrics (run_id, step, name, value, wall_time) VALUES (1, 3, 'reward', 9, 1)")
        )
    set_run(home, 1, **running_values(os.getpid()))
    request_save(home, "old")  # the control columns 0002 added work
    with upgraded.engine.connect() as connection:
        assert connection.execute(text("SELECT save_requested FROM runs WHERE id = 1")).scalar() == 1


def test_a_newer_schema_is_refused_with_a_clear_message(home):
    open_registry(home)
    with open_registry(home).engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    Registry(home).dispose()
    with pytest.raises(RegistryError, match="newer than this neighbor-grpo knows"):
        Registry(home).migrate()


def test_processes_opening_a_new_registry_at_once_all_succeed(home):
    code = "import sys; from neighbor_grpo.storage import open_registry; print(open_registry(sys.argv[1]).revision())"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], results
    assert [out.strip() for out, _ in results] == [SCHEMA_HEAD] * 3
