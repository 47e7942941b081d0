"""The records the store hands out: plain frozen dataclasses, detached from any database session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATUSES = ("open", "approved", "rejected", "done", "withdrawn")

# Admin transitions (the caller checks admin-ness); withdrawing is the requester's, from open only.
ADMIN_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"approved", "rejected"}),
    "approved": frozenset({"done", "rejected"}),
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Supporter:
    """A user who wants the same change as the requester, and why."""

    user: str
    reason: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "reason": self.reason, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class RequestChange:
    """One status change of a request: who, from what, to what, when and why."""

    actor: str
    from_status: str | None
    to_status: str
    comment: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "comment": self.comment,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class InstallRequest:
    """A request to add packages to a shared environment, with its supporters and history."""

    id: int
    env: str
    specs: tuple[str, ...]
    reason: str
    requester: str
    status: str
    admin_comment: str
    created_at: datetime
    updated_at: datetime
    supporters: tuple[Supporter, ...]
    history: tuple[RequestChange, ...]
    attempts: int  # intercepted install attempts (events) for any of its packages in its env

    @property
    def demand(self) -> int:
        """Supporters plus intercepted attempts: what the admin queue is sorted by."""
        return len(self.supporters) + self.attempts

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "specs": list(self.specs),
            "reason": self.reason,
            "requester": self.requester,
            "status": self.status,
            "admin_comment": self.admin_comment,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "supporters": [s.as_json() for s in self.supporters],
            "history": [h.as_json() for h in self.history],
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class UsageRow:
    """Kernel launches of one kernel of one environment."""

    env: str
    kernel: str
    launches: int
    users: int
    last_used: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "kernel": self.kernel,
            "launches": self.launches,
            "users": self.users,
            "last_used": _iso(self.last_used),
        }


@dataclass(frozen=True)
class EnvUsageRow:
    """Kernel launches of one environment, all its kernels together."""

    env: str
    launches: int
    users: int  # distinct users over all the environment's kernels
    last_used: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "launches": self.launches,
            "users": self.users,
            "last_used": _iso(self.last_used),
        }


@dataclass(frozen=True)
class AttemptRow:
    """Intercepted install attempts of one package in one environment."""

    env: str
    package: str
    attempts: int
    users: int
    last_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "package": self.package,
            "attempts": self.attempts,
            "users": self.users,
            "last_at": _iso(self.last_at),
        }


@dataclass(frozen=True)
class Fingerprint:
    """What one host (server) last saw of one environment's installed package set."""

    env: str
    host: str
    fingerprint: str
    package_count: int
    seen_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "host": self.host,
            "fingerprint": self.fingerprint,
            "package_count": self.package_count,
            "seen_at": self.seen_at.isoformat(),
        }
