"""Alembic environment of the envshare store.

The store runs it programmatically (``migrate.alembic_config``) and passes its own connection in
``config.attributes["connection"]``. Maintainers add a revision with::

    python -c "from alembic import command; from jupyter_envshare.store.migrate import alembic_config; \
command.revision(alembic_config(), 'what changed')"

then edit the generated file under ``versions/`` (named ``NNNN_what.py``, ``revision = "NNNN"``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from jupyter_envshare.store.models import VERSION_TABLE, Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite can only ALTER a few things: later migrations copy tables ("batch mode") there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("Set sqlalchemy.url, or run migrations through RequestStore.migrate().")
    engine = create_engine(url)
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("The envshare store migrates online only (RequestStore.migrate()).")
run_migrations()
