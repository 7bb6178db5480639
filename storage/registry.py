"""The SQLite registry: one connection recipe, short transactions, migrations on open.

Readers (CLI, dashboard, ComfyUI) and the one writing worker share a file. WAL lets readers run
beside a writer; every write transaction starts with BEGIN IMMEDIATE so it queues on the busy
timeout instead of failing halfway with "database is locked" when it upgrades a read lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from .home import check_home, registry_file, resolve_home
from .schema import Base

BUSY_TIMEOUT_S = 30.0
MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions (a test keeps them equal). Knowing it without
# loading Alembic keeps every front end's start fast when the schema is already current.
SCHEMA_HEAD = "0003"


class RegistryError(ValueError):
    """Something a user asked of the registry cannot be done; the message says why."""


def _configure_connection(dbapi_connection, _record) -> None:
    # The driver's own implicit BEGIN would be deferred; we issue BEGIN ourselves (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL survives a killed process; only a power cut can lose the last commits.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _begin(connection) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class Registry:
    """The registry of one home folder. Use `read()` / `write()` for each short transaction."""

    def __init__(self, home: Path):
        self.home = home
        self.path = registry_file(home)
        check_home(home)
        self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(self.engine, "connect", _configure_connection)
        event.listen(self.engine, "begin", _begin)

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Session]:
        with self.engine.connect() as connection:
            connection.execution_options(sqlite_begin=begin)
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                yield session

    def read(self) -> AbstractContextManager[Session]:
        return self._transaction("DEFERRED")

    def write(self) -> AbstractContextManager[Session]:
        """BEGIN IMMEDIATE: waits (up to the busy timeout) for the write lock before reading."""
        return self._transaction("IMMEDIATE")

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not connection.scalar(text("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'")):
                return None
            return connection.scalar(text("SELECT version_num FROM alembic_version"))

    def migrate(self) -> None:
        """Upgrade to the newest schema; a single read when already there."""
        try:
            current = self.revision()
        except DatabaseError as error:
            raise RegistryError(
                f"{self.path} is not a readable neighbor-grpo registry ({error.orig}); it is damaged or another "
                "kind of file: move it aside and a new, empty registry is created (run folders are kept)"
            ) from None
        if current == SCHEMA_HEAD:
            return
        from alembic.script import ScriptDirectory

        known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        if current is not None and current not in known:
            raise RegistryError(
                f"{self.path} has schema revision {current}, newer than this neighbor-grpo knows; upgrade neighbor-grpo"
            )
        self.upgrade("head")

    def upgrade(self, target: str) -> None:
        with self.engine.connect() as connection:
            # SQLite alters a table by copying and dropping it; with foreign keys on, dropping
            # `runs` would cascade into every run's metrics. The pragma only works outside a
            # transaction, hence the driver connection.
            driver = connection.connection.driver_connection
            driver.execute("PRAGMA foreign_keys = OFF")
            try:
                self._upgrade_in_transaction(connection, target)
            finally:
                driver.execute("PRAGMA foreign_keys = ON")

    def _upgrade_in_transaction(self, connection, target: str) -> None:
        from alembic import command

        config = alembic_config()
        # One immediate transaction: a second process opening at the same time waits, then finds
        # the schema current and changes nothing.
        connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = Base.metadata
            command.upgrade(config, target)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RegistryError(f"migrating {self.path} to {target} broke {len(broken)} references; not committed")

    def dispose(self) -> None:
        self.engine.dispose()


_OPEN: dict[Path, Registry] = {}
_OPEN_LOCK = threading.Lock()


def open_registry(home: Registry | str | os.PathLike | None = None) -> Registry:
    """The registry of `home` (see `resolve_home`), migrated; one per folder and process."""
    if isinstance(home, Registry):
        return home
    folder = resolve_home(home)
    with _OPEN_LOCK:
        if folder not in _OPEN:
            registry = Registry(folder)
            registry.migrate()
            _OPEN[folder] = registry
        return _OPEN[folder]


def forget_registries() -> None:
    """Close every cached registry (tests, and processes that fork)."""
    with _OPEN_LOCK:
        for registry in _OPEN.values():
            registry.dispose()
        _OPEN.clear()
