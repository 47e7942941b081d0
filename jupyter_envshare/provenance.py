"""Where a shared environment came from: sidecar, ``conda-meta/history``, lock and spec -> ``Provenance``.

This module assembles what the others read (``sidecar``, ``history``, ``lockfiles``, ``specfile``) and
the installed records into one ``Provenance``, field by field from the first source that knows. It
never raises on bad input: whatever could not be read is a ``Problem`` with a message a person can act
on, and whatever could still be learned is kept. It writes nothing.
"""

from __future__ import annotations

import json
import os
import platform as _host
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import user_name
from .discovery import Problem, SharedEnv
from .history import UNKNOWN_TOOL, PixiMarker, Transaction, read_history, read_pixi_marker
from .lockfiles import DEFAULT_ENVIRONMENT, PIXI, LockInfo, read_lock
from .packages import channel_of_url, normalize_channel
from .sidecar import (
    Builder,
    GitInfo,
    Sidecar,
    merge_sidecars,
    read_sidecar,
    sidecar_from_catalog,
    sidecar_from_mapping,
    sidecar_path,
)
from .specfile import SpecInfo, read_spec

__all__ = ["Provenance", "host_platform", "read_provenance", "spec_drift"]


@dataclass(frozen=True)
class Provenance:
    """Everything known about where a shared environment came from, with what could not be read."""

    name: str
    prefix: str
    sidecar: Sidecar | None = None
    sidecar_source: str = ""  # sidecar | catalog | sidecar+catalog | ""
    spec: SpecInfo | None = None
    lock: LockInfo | None = None
    channels: tuple[str, ...] = ()
    channels_source: str = ""  # lock | spec | records | ""
    history: tuple[Transaction, ...] = ()
    pixi: PixiMarker | None = None
    built_at: datetime | None = None
    builder: Builder | None = None
    git: GitInfo | None = None
    record_count: int = 0
    record_owners: frozenset[str] = frozenset()
    record_times: tuple[datetime, datetime] | None = None  # oldest and newest conda-meta/*.json mtime
    status: str = ""  # "unlocked" when no readable lock is known; otherwise drift decides
    problems: tuple[Problem, ...] = ()


def host_platform() -> str:
    """The conda platform of this machine (``linux-64``, ``osx-arm64``, ...)."""
    machine = _host.machine().lower()
    if sys.platform == "darwin":
        return "osx-arm64" if machine in ("arm64", "aarch64") else "osx-64"
    if sys.platform == "win32":
        return "win-arm64" if machine == "arm64" else "win-64"
    arch = {"x86_64": "64", "amd64": "64", "i686": "32", "i386": "32", "arm64": "aarch64"}.get(
        machine, machine
    )
    return f"linux-{arch}"


def _resolve(prefix: Path, path: str) -> Path:
    """A sidecar path: absolute as written, or relative to the prefix."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else prefix / candidate


@dataclass(frozen=True)
class _RecordStats:
    count: int = 0
    owners: frozenset[str] = frozenset()
    times: tuple[datetime, datetime] | None = None
    files: tuple[str, ...] = ()


def _record_stats(meta: Path, problems: list[Problem]) -> _RecordStats:
    uids: set[int] = set()
    mtimes: list[float] = []
    files: list[str] = []
    try:
        with os.scandir(meta) as entries:
            for entry in entries:
                if not entry.name.endswith(".json"):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                uids.add(st.st_uid)
                mtimes.append(st.st_mtime)
                files.append(entry.path)
    except FileNotFoundError:
        problems.append(Problem("not-an-env", f"{meta} does not exist: this is no conda environment."))
        return _RecordStats()
    except OSError as err:
        problems.append(Problem("unreadable", f"Cannot list {meta}: {err.strerror or err}.", "warning"))
        return _RecordStats()
    times = None
    if mtimes:
        times = (
            datetime.fromtimestamp(min(mtimes), timezone.utc),
            datetime.fromtimestamp(max(mtimes), timezone.utc),
        )
    owners = frozenset(user_name(uid) for uid in uids)
    return _RecordStats(len(files), owners, times, tuple(sorted(files)))


def _record_channels(files: Sequence[str]) -> tuple[str, ...]:
    """Channels named by installed records (read only when neither lock nor spec names any)."""
    channels: dict[str, None] = {}
    for path in files:
        try:
            with open(path, "rb") as fh:
                doc = json.loads(fh.read())
        except (OSError, ValueError):
            continue  # unreadable records are drift's and the health report's business
        if not isinstance(doc, dict):
            continue
        channel = doc.get("channel")
        url = doc.get("url")
        if isinstance(channel, str) and channel:
            channels[normalize_channel(channel)] = None
        elif isinstance(url, str) and url:
            channels[channel_of_url(url)] = None
    return tuple(c for c in channels if c)


def _inferred_builder(
    prefix: Path, history: Sequence[Transaction], pixi: PixiMarker | None
) -> Builder | None:
    tool = next((t for t in history if t.tool != UNKNOWN_TOOL), None)
    if tool is None and pixi is None:
        return None
    try:
        user = user_name((prefix / "conda-meta" / "history").stat().st_uid)
    except OSError:
        user = ""
    if tool is not None:
        return Builder(user=user, tool=tool.tool, tool_version=tool.tool_version)
    assert pixi is not None
    return Builder(user=user, tool=PIXI, tool_version=pixi.pixi_version)


def read_provenance(
    env: SharedEnv, catalog: Mapping[str, Any] | None = None, *, platform: str | None = None
) -> Provenance:
    """Everything known about where ``env`` came from; never raises on what it finds on disk."""
    # Sources, the first winning field by field: the sidecar (env.sidecar, else conda-meta/envshare),
    # the catalog entry (`catalog`, default env.catalog), pixi's conda-meta/pixi, the history.
    prefix = Path(env.prefix)
    meta = prefix / "conda-meta"
    wanted_platform = platform or host_platform()
    problems: list[Problem] = []

    own: Sidecar | None
    if env.sidecar is not None:
        own, own_problems = sidecar_from_mapping(env.sidecar, str(sidecar_path(prefix)))
    else:
        own, own_problems = read_sidecar(prefix)
    problems.extend(own_problems)
    entry = catalog if catalog is not None else env.catalog
    from_catalog, catalog_problems = sidecar_from_catalog(entry) if entry else (None, ())
    problems.extend(catalog_problems)
    sidecar = own
    source = "sidecar" if own is not None else ""
    if from_catalog is not None:
        sidecar = merge_sidecars(own, from_catalog) if own is not None else from_catalog
        source = "sidecar+catalog" if own is not None else "catalog"

    pixi, pixi_problems = read_pixi_marker(prefix)
    problems.extend(pixi_problems)

    spec_file: Path | None = None
    if sidecar is not None and sidecar.spec_path:
        spec_file = _resolve(prefix, sidecar.spec_path)
    elif pixi is not None and pixi.manifest_path:
        spec_file = Path(pixi.manifest_path)
    spec = read_spec(spec_file) if spec_file is not None else None
    if spec is not None:
        problems.extend(spec.problems)

    lock = _provenance_lock(prefix, sidecar, pixi, wanted_platform)
    if lock is not None:
        problems.extend(lock.problems)
        stamped = sidecar.lock_sha256 if sidecar is not None else None
        if stamped and lock.sha256 and stamped != lock.sha256:
            message = (
                f"The lock file {lock.path} changed since the environment was stamped "
                f"(sha256 {stamped[:12]}... is now {lock.sha256[:12]}...)."
            )
            problems.append(Problem("lock-changed", message, "warning"))

    history, history_problems = read_history(prefix)
    problems.extend(history_problems)
    stats = _record_stats(meta, problems)

    channels: tuple[str, ...] = ()
    channels_source = ""
    if lock is not None and lock.channels:
        channels, channels_source = lock.channels, "lock"
    elif spec is not None and spec.channels:
        channels, channels_source = tuple(normalize_channel(c) for c in spec.channels), "spec"
    else:
        channels = _record_channels(stats.files)
        channels_source = "records" if channels else ""

    built_at = sidecar.built_at if sidecar is not None else None
    if built_at is None and history and history[0].date is not None:
        built_at = history[0].date.astimezone()  # history times are local
    if built_at is None and pixi is not None and pixi.mtime is not None:
        built_at = datetime.fromtimestamp(pixi.mtime, timezone.utc)
    builder = sidecar.builder if sidecar is not None and sidecar.builder is not None else None
    if builder is None:
        builder = _inferred_builder(prefix, history, pixi)

    return Provenance(
        name=env.name,
        prefix=str(prefix),
        sidecar=sidecar,
        sidecar_source=source,
        spec=spec,
        lock=lock,
        channels=channels,
        channels_source=channels_source,
        history=history,
        pixi=pixi,
        built_at=built_at,
        builder=builder,
        git=sidecar.git if sidecar is not None else None,
        record_count=stats.count,
        record_owners=stats.owners,
        record_times=stats.times,
        status="unlocked" if lock is None or not lock.readable else "",
        problems=tuple(problems),
    )


def _provenance_lock(
    prefix: Path, sidecar: Sidecar | None, pixi: PixiMarker | None, platform: str
) -> LockInfo | None:
    environment = DEFAULT_ENVIRONMENT
    if sidecar is not None and sidecar.lock_environment:
        environment = sidecar.lock_environment
    elif pixi is not None and pixi.environment_name:
        environment = pixi.environment_name
    if sidecar is not None and sidecar.lock_path:
        return read_lock(_resolve(prefix, sidecar.lock_path), platform, environment)
    if pixi is not None and pixi.manifest_path:
        candidate = Path(pixi.manifest_path).parent / "pixi.lock"
        if candidate.is_file():
            return read_lock(candidate, pixi.platform or platform, environment)
    return None


def spec_drift(prov: Provenance) -> Problem | None:
    """Whether the spec changed since it was stamped (sha256) or since its lock was made (mtime)."""
    spec = prov.spec
    if spec is None or not spec.sha256:
        return None
    stamped = prov.sidecar.spec_sha256 if prov.sidecar is not None else None
    if stamped and stamped.lower() != spec.sha256:
        when = f" on {prov.built_at:%Y-%m-%d %H:%M %Z}".rstrip() if prov.built_at else ""
        message = (
            f"The spec {spec.path} changed since the environment was stamped{when} "
            f"(sha256 {stamped[:12]}... is now {spec.sha256[:12]}...): the environment may no longer "
            "be what the spec says. Rebuild it, or stamp it again if the change is cosmetic."
        )
        return Problem("spec-drift", message, "warning")
    lock = prov.lock
    if lock is not None and lock.mtime is not None and spec.mtime is not None and spec.mtime > lock.mtime:
        edited = datetime.fromtimestamp(spec.mtime, timezone.utc)
        locked = datetime.fromtimestamp(lock.mtime, timezone.utc)
        message = (
            f"The spec {spec.path} (modified {edited:%Y-%m-%d %H:%M} UTC) is newer than its lock file "
            f"{lock.path} ({locked:%Y-%m-%d %H:%M} UTC): the lock may not contain the latest changes."
        )
        return Problem("spec-drift", message, "warning")
    return None
