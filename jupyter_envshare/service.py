"""The environments service: what the REST API and the CLI say about shared environments.

One facade over discovery, provenance and drift, free of tornado: handlers and commands are thin
shells over it. Lock files are parsed once per version of the file; drift statuses are cached by the
drift engine's digest and published on a ``StatusBoard`` that the kernelspec metadata reads.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .discovery import EnvDiscovery, Problem, SharedEnv, StatKey, stat_key
from .drift import UNAVAILABLE, DriftEngine, DriftReport
from .history import first_history_date
from .lockfiles import DEFAULT_ENVIRONMENT, LockInfo, read_lock
from .packages import PackageRef
from .provenance import Provenance, host_platform, read_provenance
from .status import STATUS_BOARD, StatusBoard


class ServiceError(Exception):
    """A request the service cannot satisfy; ``status`` is the HTTP status that says why."""

    status = 400


class EnvNotFound(ServiceError):
    """No environment of that name is visible to the caller."""

    status = 404


def lock_location(env: SharedEnv) -> tuple[Path, str] | None:
    """The lock file an environment's sidecar or catalog entry names, and the lock environment."""
    sidecar = env.sidecar or {}
    catalog = env.catalog or {}
    raw = sidecar.get("lock_path") or catalog.get("lock_path") or catalog.get("lock")
    if not raw:
        return None
    path = Path(str(raw)).expanduser()
    if not path.is_absolute():
        path = Path(env.prefix) / path
    environment = str(
        sidecar.get("lock_environment") or catalog.get("lock_environment") or DEFAULT_ENVIRONMENT
    )
    return path, environment


class LockCache:
    """Parsed lock files, read again only when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str, str], tuple[StatKey, LockInfo]] = {}

    def get(self, path: Path, environment: str, platform: str) -> LockInfo:
        """The lock at ``path`` (its problems say why when it cannot be used)."""
        key = (str(path), environment, platform)
        current = stat_key(str(path))
        with self._lock:
            cached = self._locks.get(key)
            if cached is not None and cached[0] == current:
                return cached[1]
        info = read_lock(path, platform=platform, environment=environment)
        with self._lock:
            self._locks[key] = (current, info)
        return info


class EnvService:
    """Summaries, details, drift and packages of the shared environments."""

    def __init__(
        self,
        discovery: EnvDiscovery,
        drift: DriftEngine | None = None,
        board: StatusBoard = STATUS_BOARD,
        platform: str | None = None,
    ) -> None:
        self.discovery = discovery
        self.drift_engine = drift or DriftEngine()
        self.board = board
        self.locks = LockCache()
        self.platform = platform or host_platform()
        self._lock = threading.Lock()
        self._created: dict[str, tuple[StatKey, str | None]] = {}

    # -- queries ----------------------------------------------------------------------------------

    def envs(self, include_hidden: bool = False) -> list[SharedEnv]:
        """Environments the caller may see: allowed ones, or every record for admins."""
        return [e for e in self.discovery.snapshot().envs if include_hidden or e.allowed]

    def env(self, name: str, include_hidden: bool = False, max_age: float = 0.0) -> SharedEnv:
        """One environment by name, or EnvNotFound (also for ones the caller may not see).

        ``max_age``: seconds the view may be old (the disk is checked when it is older, or when the
        name is not in it or not allowed: one published or allowed a moment ago is found at once)."""
        record = self.discovery.snapshot(max_age=max_age).env(name)
        if max_age and (record is None or not (include_hidden or record.allowed)):
            record = self.discovery.snapshot().env(name)
        if record is None or not (include_hidden or record.allowed):
            raise EnvNotFound(f"No shared environment called {name!r}. GET envs lists the ones you can use.")
        return record

    def lock(self, env: SharedEnv) -> LockInfo | None:
        """The parsed lock of an environment, if it names one."""
        where = lock_location(env)
        return None if where is None else self.locks.get(where[0], where[1], self.platform)

    def status(self, env: SharedEnv) -> str:
        """in-sync | drifted | unlocked | unavailable, cheaply, published on the status board."""
        if not env.usable:
            status = UNAVAILABLE
        else:
            lock = self.lock(env)
            status = self.drift_engine.status(env.prefix, lock if lock and lock.readable else None)
        self.board.publish(env.prefix, status)
        return status

    def summaries(self, include_hidden: bool = False) -> list[dict[str, Any]]:
        """``GET envs``: one summary per environment."""
        return [self.summary(env) for env in self.envs(include_hidden)]

    def summary(self, env: SharedEnv) -> dict[str, Any]:
        """The list view of one environment."""
        catalog = env.catalog or {}
        sidecar = env.sidecar or {}
        packages = None if not env.usable else len(self.drift_engine.installed(env.prefix).packages)
        return {
            "name": env.name,
            "display_name": str(catalog.get("display_name") or env.name),
            "description": catalog.get("description"),
            "prefix": env.prefix,
            "path": env.path,
            "kernels": [k.name for k in env.kernels],
            "status": self.status(env),
            "read_only": env.read_only,
            "allowed": env.allowed,
            "package_count": packages,
            "built_at": sidecar.get("built_at") or catalog.get("built_at") or self.created_at(env),
            "problems": [jsonable(p) for p in env.problems if p.severity != "info" or not env.allowed],
        }

    def created_at(self, env: SharedEnv) -> str | None:
        """When the environment was created, from the first block of its conda history (as the
        detail view's build date falls back to); the file's first bytes, read again when it changes."""
        if not env.usable:
            return None
        key = stat_key(str(Path(env.prefix) / "conda-meta" / "history"))
        with self._lock:
            cached = self._created.get(env.prefix)
        if cached is not None and cached[0] == key:
            return cached[1]
        first = first_history_date(env.prefix)
        created = None if first is None else first.astimezone().isoformat()  # history times are local
        with self._lock:
            self._created[env.prefix] = (key, created)
        return created

    def detail(self, name: str, include_hidden: bool = False) -> dict[str, Any]:
        """``GET envs/{name}``: provenance, history, channels and kernels."""
        env = self.env(name, include_hidden)
        prov = read_provenance(env, platform=self.platform)
        doc = self.summary(env)
        doc.update(
            {
                "owner": (env.catalog or {}).get("owner"),
                "contact": (env.catalog or {}).get("contact"),
                "kernels": [
                    {
                        "name": k.name,
                        "display_name": k.display_name,
                        "language": k.language,
                        "raw_name": k.raw_name,
                    }
                    for k in env.kernels
                ],
                "provenance": provenance_json(prov),
                "channels": list(prov.channels),
                "history": [jsonable(t) for t in prov.history],
                "problems": [jsonable(p) for p in (*env.problems, *prov.problems)],
            }
        )
        return doc

    def drift(
        self,
        name: str,
        deep: bool = False,
        include_hidden: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """``GET envs/{name}/drift``: the drift report as JSON."""
        return self.drift_report(self.env(name, include_hidden), deep, progress).as_json()

    def drift_report(
        self, env: SharedEnv, deep: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> DriftReport:
        """The drift report of an environment against its lock."""
        lock = self.lock(env)
        report = self.drift_engine.report(
            env.prefix, lock if lock and lock.readable else None, deep, progress
        )
        if not deep:
            self.board.publish(env.prefix, report.status)
        return report

    def fingerprint(self, env: SharedEnv) -> tuple[str, int]:
        """A digest of the installed package set (what servers on other nodes compare), and its size."""
        packages = self.drift_engine.installed(env.prefix).packages
        dists = sorted(f"{p.kind}:{p.name.lower()}={p.version}={p.build}" for p in packages)
        return hashlib.sha256("\n".join(dists).encode()).hexdigest(), len(dists)

    def packages(self, name: str, include_hidden: bool = False) -> list[dict[str, Any]]:
        """``GET envs/{name}/packages``: installed conda and pip packages."""
        env = self.env(name, include_hidden)
        state = self.drift_engine.installed(env.prefix)
        return [package_json(p) for p in sorted(state.packages, key=lambda p: (p.kind, p.name.lower()))]


def package_json(ref: PackageRef) -> dict[str, Any]:
    """A package as the API returns it."""
    return {
        "name": ref.name,
        "version": ref.version,
        "build": ref.build,
        "kind": ref.kind,
        "channel": ref.channel,
        "subdir": ref.subdir,
        "installer": ref.installer or None,
        "direct_url": ref.direct_url or None,
    }


def provenance_json(prov: Provenance) -> dict[str, Any]:
    """Provenance as the API returns it (the spec's parsed fields, not its raw text)."""
    spec = prov.spec
    lock = prov.lock
    return {
        "sidecar_source": prov.sidecar_source or None,
        "spec": None
        if spec is None
        else {
            "path": jsonable(spec.path),
            "sha256": spec.sha256,
            "name": spec.name,
            "channels": jsonable(spec.channels),
            "dependencies": jsonable(spec.dependencies),
            "pip": jsonable(spec.pip),
        },
        "lock": None
        if lock is None
        else {
            "path": jsonable(lock.path),
            "format": lock.format,
            "sha256": lock.sha256,
            "platform": lock.platform,
            "package_count": len(lock.packages),
            "problems": jsonable(lock.problems),
        },
        "git": jsonable(prov.git),
        "builder": jsonable(prov.builder),
        "built_at": jsonable(prov.built_at),
        "channels_source": prov.channels_source or None,
        "record_owners": sorted(prov.record_owners),
        "record_times": jsonable(prov.record_times),
        "pixi": jsonable(prov.pixi),
    }


def jsonable(value: Any) -> Any:
    """Dataclasses, datetimes, paths and collections as plain JSON values."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Problem):
        return {"kind": value.kind, "message": value.message, "severity": value.severity}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value) if f.name != "extra"}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)
