"""Database engines for SQLite and PostgreSQL, and the translation of driver errors into store errors.

SQLite: WAL (readers never wait for the writer), a busy timeout, foreign keys on, and SQLAlchemy
(not the sqlite3 module) emitting BEGIN, so that reads are real transactions and write transactions
start with BEGIN IMMEDIATE: two writers then queue on the busy timeout instead of one failing when it
upgrades a read lock. See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#sqlite-transactions.

PostgreSQL: psycopg 3, a short connect timeout, and pre-ping so that connections a restarted server
dropped are replaced before use: the store recovers by itself when the database returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, exc, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from .errors import StoreError, StoreUnavailable

# Execution option that marks a transaction as read-only (SQLite: plain BEGIN, not BEGIN IMMEDIATE).
READ_ONLY = "envshare_read_only"


def parse_url(url: str) -> URL:
    """The URL with a driver chosen: ``postgresql://`` means psycopg 3 here; ValueError if unsupported."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise ValueError(f"{url!r} is not a database URL: {err}") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif driver != "psycopg":
            raise ValueError(
                f"Use postgresql+psycopg:// for PostgreSQL (the psycopg 3 driver), not {driver}."
            )
        return parsed
    if backend == "sqlite":
        if driver != "pysqlite":
            raise ValueError(f"Use sqlite:///PATH for SQLite, not the {driver} driver.")
        return parsed
    raise ValueError(
        f"Unsupported database {backend!r}: use sqlite:///PATH (one server) or "
        "postgresql+psycopg://USER@HOST/DB (a hub)."
    )


def describe(url: URL) -> str:
    """The URL as it may be shown to people: no password."""
    return url.render_as_string(hide_password=True)


def is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: URL, *, connect_timeout: float, busy_timeout: float) -> Engine:
    """An engine for ``url``; it connects lazily (no I/O here)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout=busy_timeout)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_recycle=1800,
        connect_args={
            # libpq's connect_timeout is whole seconds
            "connect_timeout": max(1, math.ceil(connect_timeout)),
            "application_name": "jupyter_envshare",
        },
    )


def _sqlite_engine(url: URL, *, busy_timeout: float) -> Engine:
    memory = is_memory_sqlite(url)
    kwargs: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
    engine = create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        **kwargs,
    )
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; the WAL keeps it safe
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _reason(err: BaseException) -> str:
    original = getattr(err, "orig", None) or err
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


class Conflict(StoreUnavailable):
    """Concurrent transactions collided (deadlock, serialization failure): running it again will do."""


def unavailable(where: str, reason: str) -> StoreUnavailable:
    """The error a person sees when the database cannot be reached."""
    if where.startswith("sqlite"):
        check = "Check that the database file's directory exists and this server may write there"
    else:
        check = "Check that the database server is running and reachable from this host"
    return StoreUnavailable(
        f"The request database ({where}) cannot be reached: {reason}. Requests and usage are unavailable "
        f"until it is back (kernels are not affected). {check}, and that c.EnvShare.database_url is right."
    )


def busy(where: str, reason: str, kind: type[StoreUnavailable] = StoreUnavailable) -> StoreUnavailable:
    """The error a person sees when the database is up but too busy to answer in time."""
    return kind(
        f"The request database ({where}) is too busy to answer: {reason}. Try again in a moment; if this "
        "persists, check the database server's load and connection limit."
    )


_CONFLICT_STATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_BUSY_STATES = frozenset({"55P03", "57014"})  # lock not available, statement timeout
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def _missing_schema(err: exc.DBAPIError) -> bool:
    message = str(err.orig)
    return "no such table" in message or getattr(err.orig, "sqlstate", None) == "42P01"


@contextmanager
def database_errors(where: str) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors into StoreUnavailable (cannot reach, too busy) or StoreError."""
    try:
        yield
    except StoreError:
        raise
    except exc.DBAPIError as err:
        state = str(getattr(err.orig, "sqlstate", None) or "")
        reason = _reason(err)
        if _missing_schema(err):
            raise StoreError(
                f"The request database ({where}) has no envshare tables yet: they are created when the "
                "server starts (RequestStore.migrate); restart the server or run the migration."
            ) from err
        if state in _CONFLICT_STATES:
            raise busy(where, reason, Conflict) from err
        if state in _BUSY_STATES or state.startswith("53") or any(m in reason for m in _SQLITE_BUSY):
            raise busy(where, reason) from err
        if isinstance(err, exc.OperationalError | exc.InterfaceError) or err.connection_invalidated:
            raise unavailable(where, reason) from err
        raise StoreError(f"The request database ({where}) failed: {reason}") from err
    except exc.TimeoutError as err:  # every pooled connection busy for pool_timeout seconds
        raise busy(where, "no free connection in the pool") from err
    except exc.SQLAlchemyError as err:
        raise StoreError(f"The request database ({where}) failed: {_reason(err)}") from err
