"""Apply the Alembic migrations shipped in ``migrations/``, safely when several servers start at once.

PostgreSQL: the upgrade runs in one transaction holding a transaction-level advisory lock, so a second
server waits, then finds the schema at head. SQLite: an exclusive file lock beside the database file
(the BEGIN IMMEDIATE of the upgrade's transaction serializes the writes as well).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

from .engine import is_memory_sqlite

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: the advisory lock all envshare servers of a hub agree on.
ADVISORY_LOCK_KEY = 0x656E_7673_6861_7265  # "envshare"
LOCK_TIMEOUT = 120.0


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini); ``connection`` is used by env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped in the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (a no-op when it is there already)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if is_memory_sqlite(url):
            _upgrade(engine)
            return
        database = Path(url.database or "").expanduser()
        database.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(database.with_name(database.name + ".migrate-lock")):
            _upgrade(engine)
        return
    with engine.begin() as connection:
        # Released when this transaction ends, whatever happens to this process.
        connection.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
        command.upgrade(alembic_config(connection), "head")


def _upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


@contextmanager
def _file_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"Another server has been migrating the database for {timeout:.0f} s "
                        f"(lock file {path}); if no server is starting, remove the lock file."
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
