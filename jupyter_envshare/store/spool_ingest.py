"""Ingest a user's event spool into the store, from where the last ingest stopped.

The byte offset reached is kept in ``<spool_dir>/events.offset`` and written only after the events
before it are committed, so a server that stops at any point neither loses events nor (thanks to
the store's unique event ids, even when the offset file is lost) counts any twice. A last line
without its newline may be a write in progress: it is left for the next ingest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

from ..spool import SPOOL_FILE
from .request_store import INGEST_BATCH, RequestStore

OFFSET_FILE = "events.offset"
MAX_LINE = 65_536  # events are a few hundred bytes; a longer line is garbage and is skipped
_HEAD = 256  # bytes of the spool's beginning that identify it (a replaced spool starts over)
_EVENT_START = b'{"id":'


def ingest_spool(store: RequestStore, spool_dir: str | os.PathLike[str], *, user: str | None = None) -> int:
    """Store the spool's events not ingested yet; return how many were new to the store.

    ``user``: attribute every event to this user (the spool's owner) whatever the events say.
    Raises what the store raises (StoreUnavailable: nothing is lost, the next call resumes) and
    OSError when the spool cannot be read or the offset not written (the next call re-reads; the
    store's event ids keep the counts exact).
    """
    directory = Path(spool_dir)
    try:
        spool = (directory / SPOOL_FILE).open("rb")
    except FileNotFoundError:
        return 0
    with spool:
        identity = _identity(spool)
        offset = start = _start(directory, spool, identity)
        spool.seek(offset)
        new = 0
        batch: list[dict[str, Any]] = []
        while True:
            line = spool.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                if len(line) < MAX_LINE or not _skip_rest_of_line(spool):
                    break  # end of the spool, or a line still being written
                offset = spool.tell()
                continue
            offset = spool.tell()
            event = _parse(line)
            if event is not None:
                batch.append(event)
            if len(batch) >= INGEST_BATCH:
                new += store.ingest(batch, user=user)
                batch = []
                _save(directory, spool, identity, offset)
        if batch:
            new += store.ingest(batch, user=user)
        if offset != start:
            _save(directory, spool, identity, offset)
    return new


def _parse(line: bytes) -> dict[str, Any] | None:
    candidates = [line]
    # A writer that died mid-line leaves a fragment the next event is appended to: keep that event.
    start = line.rfind(_EVENT_START)
    if start > 0:
        candidates.append(line[start:])
    for candidate in candidates:
        try:
            event = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(event, dict) and "id" in event and "kind" in event:
            return event
    return None


def _skip_rest_of_line(spool: IO[bytes]) -> bool:
    while True:
        chunk = spool.readline(MAX_LINE)
        if not chunk:
            return False
        if chunk.endswith(b"\n"):
            return True


def _identity(spool: IO[bytes]) -> dict[str, int]:
    status = os.fstat(spool.fileno())
    return {"device": status.st_dev, "inode": status.st_ino, "size": status.st_size}


def _head(spool: IO[bytes], length: int) -> str:
    position = spool.tell()
    spool.seek(0)
    head = spool.read(length)
    spool.seek(position)
    return hashlib.sha256(head).hexdigest()


def _start(directory: Path, spool: IO[bytes], identity: dict[str, int]) -> int:
    """Where to resume: the saved offset if it belongs to this very spool file, else its beginning."""
    try:
        saved = json.loads((directory / OFFSET_FILE).read_text())
        offset = int(saved["offset"])
        same_file = saved["device"] == identity["device"] and saved["inode"] == identity["inode"]
        head_length = int(saved["head_length"])
        unchanged = head_length == min(offset, _HEAD) and saved["head"] == _head(spool, head_length)
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if not same_file or not unchanged or not 0 <= offset <= identity["size"]:
        return 0  # replaced, truncated or rewritten: start over (event ids keep counts exact)
    return offset


def _save(directory: Path, spool: IO[bytes], identity: dict[str, int], offset: int) -> None:
    head_length = min(offset, _HEAD)
    record = {
        "offset": offset,
        "device": identity["device"],
        "inode": identity["inode"],
        "head_length": head_length,
        "head": _head(spool, head_length),
    }
    target = directory / OFFSET_FILE
    temporary = directory / f".{OFFSET_FILE}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    temporary.replace(target)
