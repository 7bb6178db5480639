"""Where the registry lives: a database URL (PostgreSQL for a team, SQLite by default) and a
runs folder that can sit on shared storage."""

from __future__ import annotations

import os

import pytest

from neighbor_grpo.backend.cli import take_registry_options
from neighbor_grpo.storage.registry import RegistryError, database_url, open_registry
from neighbor_grpo.storage.runs import delete_run, get_run


def test_sqlite_in_the_home_folder_is_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("NGRPO_DATABASE_URL", raising=False)
    assert database_url(tmp_path) == f"sqlite:///{tmp_path / 'registry.sqlite'}"


def test_postgresql_urls_use_psycopg_3_and_other_databases_are_refused(tmp_path):
    assert database_url(tmp_path, "postgresql://u:p@db:5432/ngrpo").startswith("postgresql+psycopg://u:p@db:5432/")
    assert database_url(tmp_path, "postgres://u@db/ngrpo").startswith("postgresql+psycopg://")
    with pytest.raises(RegistryError, match="SQLite or PostgreSQL, not 'mysql'"):
        database_url(tmp_path, "mysql://u@db/ngrpo")
    with pytest.raises(RegistryError, match="cannot read the database URL"):
        database_url(tmp_path, "not a url")


def test_run_folders_go_to_the_runs_dir_and_resolve_there(home, queue, tmp_path, monkeypatch):
    shared = tmp_path / "shared-runs"
    monkeypatch.setenv("NGRPO_RUNS_DIR", str(shared))
    run_id = queue("shared")
    run = get_run(home, run_id)
    assert run.folder == shared / f"{run_id:04d}-shared" and run.folder.is_dir()
    assert not (home / "runs").exists()
    delete_run(home, run_id)
    assert not run.folder.exists()


def test_the_cli_flags_reach_every_process_through_the_environment(monkeypatch):
    # setenv first, so the values the flags set are undone after the test
    monkeypatch.setenv("NGRPO_DATABASE_URL", "")
    monkeypatch.setenv("NGRPO_RUNS_DIR", "")
    rest = take_registry_options(["runs", "list", "--database-url", "postgresql://db/x", "--runs-dir=/mnt/runs"])
    assert rest == ["runs", "list"]
    assert os.environ["NGRPO_DATABASE_URL"] == "postgresql://db/x" and os.environ["NGRPO_RUNS_DIR"] == "/mnt/runs"


def test_open_registry_reports_where_it_is(home, registry_backend):
    registry = open_registry(home)
    assert registry.dialect == registry_backend
    assert "password" not in registry.location
