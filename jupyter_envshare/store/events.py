"""Spool events as the store reads them: checked, bounded, and reduced to what is counted.

A spool is written by the user's own kernels, so anything in it may be garbage: an event that does
not have the shape below is skipped, never half-stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .specs import MAX_NAME_LENGTH, MAX_SPEC_LENGTH, MAX_SPECS, check_text, package_name

log = logging.getLogger(__name__)

LAUNCH = "launch"
LAUNCH_FAILED = "launch-failed"
INSTALL_ATTEMPT = "install-attempt"
REQUEST_INTENT = "request-intent"

MAX_EVENT_ID = 128
MAX_KIND = 32
MAX_DATA_BYTES = 16_384
_COMMON = frozenset({"id", "kind", "time", "user", "host", "env", "kernel"})


@dataclass(frozen=True)
class SpoolEvent:
    """One well-formed spool event."""

    event_id: str
    kind: str
    user: str
    host: str
    env: str
    kernel: str | None
    at: datetime
    packages: tuple[str, ...]  # install-attempt: the lower-case package names
    data: dict[str, Any] | None  # the kind's own fields (tool, action, specs, reason, ...)

    @property
    def specs(self) -> list[Any]:
        specs = (self.data or {}).get("specs")
        return specs if isinstance(specs, list) else []

    @property
    def reason(self) -> Any:
        return (self.data or {}).get("reason", "")


def parse_time(value: object, now: datetime) -> datetime:
    """The event's time in UTC; ``now`` when it is missing, garbled or in the future."""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return now
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        at = at.astimezone(timezone.utc)
        return min(at, now)
    return now


def _name(event: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"no {key}")
        return None
    return check_text(value, key, limit=MAX_NAME_LENGTH)


def parse_event(event: Mapping[str, Any], now: datetime, *, user: str | None = None) -> SpoolEvent | None:
    """The event if it is well formed, else None (logged at debug level).

    ``user``, when given, is who the event is attributed to whatever it says (a spool is written by
    its owner's kernels: a forged ``user`` field must not make someone else a supporter).
    """
    try:
        event_id = check_text(event.get("id"), "id", limit=MAX_EVENT_ID)
        kind = check_text(event.get("kind"), "kind", limit=MAX_KIND)
        known = kind in (LAUNCH, LAUNCH_FAILED, INSTALL_ATTEMPT, REQUEST_INTENT)
        who = user if user is not None else _name(event, "user", required=True)
        assert who is not None
        env = _name(event, "env", required=known) or ""
        kernel = _name(event, "kernel", required=kind == LAUNCH)
        host = _name(event, "host", required=False) or ""
        packages: tuple[str, ...] = ()
        if kind == INSTALL_ATTEMPT:
            packages = _packages(event.get("packages"))
        data = {key: value for key, value in event.items() if key not in _COMMON}
        _check_storable(data)
        encoded = json.dumps(data, ensure_ascii=True, allow_nan=False)
        stored = data if data and len(encoded) <= MAX_DATA_BYTES else None
        if kind == REQUEST_INTENT and stored is None:
            raise ValueError("a request intent without its specs and reason (or too large)")
    except (ValueError, TypeError) as err:
        log.debug("[envshare] skipping a malformed spool event (%s): %.200r", err, event)
        return None
    return SpoolEvent(
        event_id=event_id,
        kind=kind,
        user=who,
        host=host,
        env=env,
        kernel=kernel,
        at=parse_time(event.get("time"), now),
        packages=packages,
        data=stored,
    )


def _check_storable(value: object, depth: int = 0) -> None:
    # What PostgreSQL's json type and SQLite both hold: no NUL, no lone surrogates, finite nesting.
    if depth > 20:
        raise ValueError("nested too deeply")
    if isinstance(value, str):
        check_text(value, "field", limit=MAX_DATA_BYTES, required=False)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_storable(key, depth + 1)
            _check_storable(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_storable(item, depth + 1)


def _packages(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("packages is not a list")
    names: list[str] = []
    for item in value[:MAX_SPECS]:
        if isinstance(item, str) and 0 < len(item) <= MAX_SPEC_LENGTH:
            name = package_name(item)
            if name and len(name) <= MAX_NAME_LENGTH and name not in names:
                names.append(name)
    return tuple(names)
