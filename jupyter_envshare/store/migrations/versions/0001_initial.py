"""Initial schema: requests, their packages, supporters and history; events; fingerprints.

Revision ID: 0001
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

NAME = 255  # env, user, host and kernel names
STATUS_CHECK = "status IN ('open', 'approved', 'rejected', 'done', 'withdrawn')"
OPEN_ONLY = "status = 'open'"


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "envshare_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("env", sa.String(NAME), nullable=False),
        sa.Column("specs", sa.JSON(), nullable=False),
        sa.Column("spec_key", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requester", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("admin_comment", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_envshare_requests"),
        sa.CheckConstraint(STATUS_CHECK, name="ck_envshare_requests_status"),
    )
    op.create_index("ix_envshare_requests_env_status", "envshare_requests", ["env", "status"])
    op.create_index("ix_envshare_requests_status_created_at", "envshare_requests", ["status", "created_at"])
    op.create_index("ix_envshare_requests_requester", "envshare_requests", ["requester"])
    op.create_index(
        "uq_envshare_requests_open_spec",
        "envshare_requests",
        ["env", "spec_key"],
        unique=True,
        sqlite_where=sa.text(OPEN_ONLY),
        postgresql_where=sa.text(OPEN_ONLY),
    )

    op.create_table(
        "envshare_request_packages",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("package", sa.String(NAME), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["envshare_requests.id"],
            name="fk_envshare_request_packages_request_id_envshare_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "package", name="pk_envshare_request_packages"),
    )
    op.create_index("ix_envshare_request_packages_package", "envshare_request_packages", ["package"])

    op.create_table(
        "envshare_supporters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(NAME), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["envshare_requests.id"],
            name="fk_envshare_supporters_request_id_envshare_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_envshare_supporters"),
        sa.UniqueConstraint("request_id", "username", name="uq_envshare_supporters_request_id_username"),
    )
    op.create_index("ix_envshare_supporters_username", "envshare_supporters", ["username"])

    op.create_table(
        "envshare_request_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(NAME), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _timestamp("at"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["envshare_requests.id"],
            name="fk_envshare_request_history_request_id_envshare_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_envshare_request_history"),
    )
    op.create_index("ix_envshare_request_history_request_id", "envshare_request_history", ["request_id"])

    op.create_table(
        "envshare_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("env", sa.String(NAME), nullable=False),
        sa.Column("kernel", sa.String(NAME), nullable=True),
        sa.Column("username", sa.String(NAME), nullable=False),
        sa.Column("host", sa.String(NAME), nullable=False),
        _timestamp("at"),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_envshare_events"),
        sa.UniqueConstraint("event_id", name="uq_envshare_events_event_id"),
    )
    op.create_index("ix_envshare_events_kind_env_at", "envshare_events", ["kind", "env", "at"])
    op.create_index("ix_envshare_events_at", "envshare_events", ["at"])

    op.create_table(
        "envshare_attempt_packages",
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("package", sa.String(NAME), nullable=False),
        sa.Column("env", sa.String(NAME), nullable=False),
        sa.Column("username", sa.String(NAME), nullable=False),
        _timestamp("at"),
        sa.ForeignKeyConstraint(
            ["event_pk"],
            ["envshare_events.id"],
            name="fk_envshare_attempt_packages_event_pk_envshare_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_pk", "package", name="pk_envshare_attempt_packages"),
    )
    op.create_index(
        "ix_envshare_attempt_packages_env_package", "envshare_attempt_packages", ["env", "package"]
    )
    op.create_index("ix_envshare_attempt_packages_at", "envshare_attempt_packages", ["at"])

    op.create_table(
        "envshare_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("env", sa.String(NAME), nullable=False),
        sa.Column("host", sa.String(NAME), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_envshare_fingerprints"),
        sa.UniqueConstraint("env", "host", name="uq_envshare_fingerprints_env_host"),
    )


def downgrade() -> None:
    for table in (
        "envshare_fingerprints",
        "envshare_attempt_packages",
        "envshare_events",
        "envshare_request_history",
        "envshare_supporters",
        "envshare_request_packages",
        "envshare_requests",
    ):
        op.drop_table(table)
