"""The per-user event spool: JSON lines that kernels and the provisioner append, the store ingests.

Each event is one ``write`` of one line to a file opened with ``O_APPEND``, so concurrent writers
(several kernels of one user) never interleave. Every event carries a unique id so that ingesting a
spool twice cannot count anything twice.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SPOOL_FILE = "events.jsonl"


def spool_path(spool_dir: str) -> Path:
    """The spool file of the user running this process."""
    return Path(spool_dir) / SPOOL_FILE


def make_event(kind: str, user: str, **fields: Any) -> dict[str, Any]:
    """A spool event with id, time and host filled in."""
    return {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "user": user,
        "host": socket.gethostname(),
        **fields,
    }


def append_event(spool_dir: str, event: dict[str, Any]) -> None:
    """Append one event; raises OSError if the spool cannot be written."""
    directory = Path(spool_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(directory / SPOOL_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(spool_dir: str) -> Iterator[dict[str, Any]]:
    """Every well-formed event in the spool (a torn or garbled line is skipped)."""
    try:
        with spool_path(spool_dir).open("rb") as fh:
            for raw in fh:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict) and "id" in event and "kind" in event:
                    yield event
    except FileNotFoundError:
        return
