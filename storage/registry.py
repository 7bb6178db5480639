"""The registry: one connection recipe, short transactions, migrations on open.

SQLite (a file in the home folder) is the default. Readers (CLI, dashboard, ComfyUI) and the one
writing worker share it; WAL lets readers run beside a writer, and every write transaction starts
with BEGIN IMMEDIATE so it queues on the busy timeout instead of failing halfway with "database is
locked" when it upgrades a read lock.

PostgreSQL ($NGRPO_DATABASE_URL or --database-url) lets workers and dashboards on several machines
share one registry. Every write transaction there first takes one transaction-scoped advisory
lock: writers queue exactly as under SQLite's BEGIN IMMEDIATE, so read-then-write code (unique
names, claims, stale-run recovery) keeps the same guarantees on both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session

from .home import check_home, registry_file, resolve_home, runs_root
from .schema import Base

BUSY_TIMEOUT_S = 30.0
MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions (a test keeps them equal). Knowing it without
# loading Alembic keeps every front end's start fast when the schema is already current.
SCHEMA_HEAD = "0003"
DATABASE_URL_ENV = "NGRPO_DATABASE_URL"
# Any constant works; it names "the registry's write lock" among PostgreSQL advisory locks.
_WRITE_LOCK_KEY = 0x6E67_7270


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


def database_url(home: Path, url: str | None = None) -> str:
    """`url`, else $NGRPO_DATABASE_URL, else the SQLite file in `home`; PostgreSQL URLs are pinned
    to the psycopg 3 driver (SQLAlchemy's default for postgresql:// is psycopg2, not installed)."""
    url = url or os.environ.get(DATABASE_URL_ENV) or ""
    if not url:
        return f"sqlite:///{registry_file(home)}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise RegistryError(
            f"cannot read the database URL {url!r}; expected postgresql://user:password@host:port/database"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return url
    raise RegistryError(
        f"the registry runs on SQLite or PostgreSQL, not {backend!r}; "
        "use postgresql://user:password@host:port/database or unset NGRPO_DATABASE_URL"
    )


def alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class Registry:
    """The registry of one home folder. Use `read()` / `write()` for each short transaction."""

    def __init__(self, home: Path, url: str | None = None):
        self.home = home
        check_home(home)
        url = database_url(home, url)
        # Run folders: under the home folder, or wherever $NGRPO_RUNS_DIR says (shared storage
        # that every machine of a shared registry mounts).
        self.runs_dir = runs_root(home)
        if url.startswith("sqlite"):
            self.dialect = "sqlite"
            self.path = Path(make_url(url).database or registry_file(home))
            self.location = str(self.path)
            self.engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(self.engine, "connect", _configure_connection)
            event.listen(self.engine, "begin", _begin)
        else:
            self.dialect = "postgresql"
            self.path = None
            self.location = make_url(url).render_as_string(hide_password=True)
            # pre_ping: a registry server restarted under a long-lived worker must not fail its next write.
            self.engine = create_engine(url, pool_pre_ping=True)

    def run_path(self, folder: str, checked: bool = True) -> Path:
        """Where a run's stored `folder` (`runs/<id>-<name>`) lives on this machine: under the
        runs folder, and never outside it (see paths.inside). `checked=False` only joins, for
        showing a damaged row without failing the whole listing."""
        from .paths import inside

        parts = Path(folder).parts
        base, rest = (
            (self.runs_dir, Path(*parts[1:]) if len(parts) > 1 else Path())
            if parts and parts[0] == "runs"
            else (self.home, Path(folder))
        )
        return inside(base, rest, "run folder") if checked else base / rest

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Session]:
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                connection.execution_options(sqlite_begin=begin)
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                if begin == "IMMEDIATE" and self.dialect == "postgresql":
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY})
                yield session

    def read(self) -> AbstractContextManager[Session]:
        return self._transaction("DEFERRED")

    def write(self) -> AbstractContextManager[Session]:
        """BEGIN IMMEDIATE: waits (up to the busy timeout) for the write lock before reading."""
        return self._transaction("IMMEDIATE")

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.scalar(text("SELECT version_num FROM alembic_version"))

    def migrate(self) -> None:
        """Upgrade to the newest schema; a single read when already there."""
        try:
            current = self.revision()
        except DatabaseError as error:
            if self.dialect == "postgresql":
                raise RegistryError(
                    f"cannot use the PostgreSQL registry {self.location} ({str(error.orig).strip()}); check "
                    "NGRPO_DATABASE_URL / --database-url, that the server runs and that the user may create tables"
                ) from None
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
                f"{self.location} has schema revision {current}, newer than this neighbor-grpo knows; upgrade neighbor-grpo"
            )
        self.upgrade("head")

    def upgrade(self, target: str) -> None:
        if self.dialect == "postgresql":
            self._upgrade_postgresql(target)
            return
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

    def _upgrade_postgresql(self, target: str) -> None:
        from alembic import command

        config = alembic_config()
        with self.engine.connect() as connection, connection.begin():
            # PostgreSQL alters tables in place and inside the transaction; the write lock makes a
            # second process opening at the same time wait, then find the schema current.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY})
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = Base.metadata
            command.upgrade(config, target)

    def dispose(self) -> None:
        self.engine.dispose()


_OPEN: dict[tuple[Path, str, Path], Registry] = {}
_OPEN_LOCK = threading.Lock()


def open_registry(home: Registry | str | os.PathLike | None = None, url: str | None = None) -> Registry:
    """The registry of `home` (see `resolve_home`) at `url` (see `database_url`), migrated; one
    per home folder, database and runs folder in each process."""
    if isinstance(home, Registry):
        return home
    folder = resolve_home(home)
    key = (folder, database_url(folder, url), runs_root(folder))
    with _OPEN_LOCK:
        if key not in _OPEN:
            registry = Registry(folder, url)
            registry.migrate()
            _OPEN[key] = registry
        return _OPEN[key]


def forget_registries() -> None:
    """Close every cached registry (tests, and processes that fork)."""
    with _OPEN_LOCK:
        for registry in _OPEN.values():
            registry.dispose()
        _OPEN.clear()
