"""SQLAlchemy 2 ORM models of the store.

Every table is prefixed ``envshare_`` and Alembic's version table is ``envshare_alembic_version``: a
hub may point ``database_url`` at a database that other applications (JupyterHub itself uses Alembic)
already live in. The migrations in ``migrations/versions`` create exactly these tables; a test
compares the two.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .records import STATUSES
from .specs import MAX_FINGERPRINT_LENGTH, MAX_NAME_LENGTH

VERSION_TABLE = "envshare_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUS_CHECK = "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")"
OPEN_ONLY = "status = 'open'"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RequestRow(Base):
    """An install request."""

    __tablename__ = "envshare_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    env: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    specs: Mapped[list[str]] = mapped_column(JSON)
    # sha256 of the normalized spec set: open requests are unique per (env, spec_key).
    spec_key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    admin_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    packages: Mapped[list[RequestPackageRow]] = relationship(
        back_populates="request", cascade="all, delete-orphan", lazy="selectin"
    )
    supporters: Mapped[list[SupporterRow]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="[SupporterRow.created_at, SupporterRow.id]",
    )
    history: Mapped[list[HistoryRow]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="[HistoryRow.at, HistoryRow.id]",
    )

    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status"),
        Index("ix_envshare_requests_env_status", "env", "status"),
        Index("ix_envshare_requests_status_created_at", "status", "created_at"),
        Index("ix_envshare_requests_requester", "requester"),
        # The database, not a read-then-write, keeps two servers from opening the same request twice.
        Index(
            "uq_envshare_requests_open_spec",
            "env",
            "spec_key",
            unique=True,
            sqlite_where=text(OPEN_ONLY),
            postgresql_where=text(OPEN_ONLY),
        ),
    )


class RequestPackageRow(Base):
    """A package name a request is about (what intercepted attempts are matched on)."""

    __tablename__ = "envshare_request_packages"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("envshare_requests.id", ondelete="CASCADE"), primary_key=True
    )
    package: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)

    request: Mapped[RequestRow] = relationship(back_populates="packages")

    __table_args__ = (Index("ix_envshare_request_packages_package", "package"),)


class SupporterRow(Base):
    """A user supporting a request."""

    __tablename__ = "envshare_supporters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("envshare_requests.id", ondelete="CASCADE"))
    user: Mapped[str] = mapped_column("username", String(MAX_NAME_LENGTH))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[RequestRow] = relationship(back_populates="supporters")

    __table_args__ = (
        UniqueConstraint("request_id", "username", name="uq_envshare_supporters_request_id_username"),
        Index("ix_envshare_supporters_username", "username"),
    )


class HistoryRow(Base):
    """One status change of a request."""

    __tablename__ = "envshare_request_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("envshare_requests.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[RequestRow] = relationship(back_populates="history")

    __table_args__ = (Index("ix_envshare_request_history_request_id", "request_id"),)


class EventRow(Base):
    """An event ingested from a spool: launches, intercepted attempts, request intents."""

    __tablename__ = "envshare_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The spool's id: unique, so ingesting the same events twice cannot count anything twice.
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    env: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    kernel: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH), nullable=True)
    user: Mapped[str] = mapped_column("username", String(MAX_NAME_LENGTH))
    host: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        UniqueConstraint("event_id", name="uq_envshare_events_event_id"),
        Index("ix_envshare_events_kind_env_at", "kind", "env", "at"),
        Index("ix_envshare_events_at", "at"),
    )


class AttemptPackageRow(Base):
    """One package of one intercepted install attempt (an attempt may name several)."""

    __tablename__ = "envshare_attempt_packages"

    event_pk: Mapped[int] = mapped_column(
        ForeignKey("envshare_events.id", ondelete="CASCADE"), primary_key=True
    )
    package: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    env: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    user: Mapped[str] = mapped_column("username", String(MAX_NAME_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_envshare_attempt_packages_env_package", "env", "package"),
        Index("ix_envshare_attempt_packages_at", "at"),
    )


class FingerprintRow(Base):
    """What one host last saw of one environment."""

    __tablename__ = "envshare_fingerprints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    env: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    host: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(MAX_FINGERPRINT_LENGTH))
    package_count: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("env", "host", name="uq_envshare_fingerprints_env_host"),)
