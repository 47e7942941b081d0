"""The shared store: install requests, supporters and history; spool events and usage; fingerprints.

SQLite (one server) or PostgreSQL (a hub), through SQLAlchemy 2 with Alembic migrations shipped in
``migrations/``. Blocking by design: servers call it from a thread.
"""

from __future__ import annotations

from .errors import InvalidTransition, NotAllowed, RequestNotFound, StoreError, StoreUnavailable
from .records import (
    STATUSES,
    AttemptRow,
    EnvUsageRow,
    Fingerprint,
    InstallRequest,
    RequestChange,
    Supporter,
    UsageRow,
)
from .request_store import RequestStore
from .specs import MAX_REASON_LENGTH, MAX_SPEC_LENGTH, MAX_SPECS, normalize_spec, normalized_specs

__all__ = [
    "MAX_REASON_LENGTH",
    "MAX_SPECS",
    "MAX_SPEC_LENGTH",
    "STATUSES",
    "AttemptRow",
    "EnvUsageRow",
    "Fingerprint",
    "InstallRequest",
    "InvalidTransition",
    "NotAllowed",
    "RequestChange",
    "RequestNotFound",
    "RequestStore",
    "StoreError",
    "StoreUnavailable",
    "Supporter",
    "UsageRow",
    "normalize_spec",
    "normalized_specs",
]
