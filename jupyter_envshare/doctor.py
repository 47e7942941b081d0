"""The health of a whole shared installation: what ``jupyter envshare doctor`` reports."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import EnvShare
from .provenance import read_provenance, spec_drift
from .service import EnvService

NETWORK_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smbfs",
    "smb3",
    "fuse.sshfs",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "9p",
}


@dataclass(frozen=True)
class Finding:
    """Something an admin should know about, and where."""

    scope: str  # an environment name, or "installation"
    kind: str
    severity: str  # error | warning | info
    message: str


def doctor(
    service: EnvService, settings: EnvShare, progress: Callable[[str], None] | None = None
) -> list[Finding]:
    """Every finding about the configured installation, most severe first."""
    findings: list[Finding] = []
    snap = service.discovery.snapshot(force=True)
    findings += [Finding("installation", p.kind, _severity(p.severity), p.message) for p in snap.problems]
    for env in snap.envs:
        if progress is not None:
            progress(env.name)
        reported: set[str] = set()  # kinds discovery already reported for this env
        for problem in env.problems:
            if problem.severity != "info":
                findings.append(Finding(env.name, problem.kind, problem.severity, problem.message))
                reported.add(problem.kind)
        wanted = Path(env.path).name
        if env.name != wanted:
            findings.append(
                Finding(
                    env.name,
                    "duplicate-name",
                    "warning",
                    f"Another environment is also called {wanted!r}; this one ({env.path}) is listed as "
                    f"{env.name!r}. Kernel names follow the listed name.",
                )
            )
        if not env.usable:
            continue
        if not env.kernels:
            findings.append(
                Finding(
                    env.name,
                    "no-kernels",
                    "info",
                    f"{env.name} has no Jupyter kernel: nobody can use it from a notebook.",
                )
            )
        report = service.drift_report(env)
        # The drift engine checks some of the same things (private records): one finding each.
        findings += [
            Finding(env.name, p.kind, _severity(p.severity), p.message)
            for p in report.findings
            if p.kind not in reported
        ]
        if report.status == "drifted":
            findings.append(
                Finding(
                    env.name,
                    "drifted",
                    "warning",
                    f"{len(report.changes)} differences from its lock "
                    f"(see `jupyter envshare drift {env.name}`).",
                )
            )
        prov = read_provenance(env, platform=service.platform)
        drifted_spec = spec_drift(prov)
        if drifted_spec is not None:
            findings.append(Finding(env.name, drifted_spec.kind, drifted_spec.severity, drifted_spec.message))
        if prov.lock is not None:
            findings += [Finding(env.name, p.kind, p.severity, p.message) for p in prov.lock.problems]
    findings += _package_caches(settings.env_roots)
    database = database_path(settings.database_url)
    if database is not None:
        fs = filesystem_type(database)
        if fs in NETWORK_FILESYSTEMS:
            findings.append(
                Finding(
                    "installation",
                    "sqlite-on-network-fs",
                    "warning",
                    f"The request database {database} is on a {fs} filesystem: SQLite locking is unreliable "
                    "there. Set c.EnvShare.database_url to a PostgreSQL URL for a hub.",
                )
            )
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (order.get(f.severity, 3), f.scope, f.kind))


def _severity(value: str) -> str:
    return value if value in ("error", "warning", "info") else "warning"


def _package_caches(roots: Iterable[str]) -> list[Finding]:
    findings = []
    seen: set[Path] = set()
    for root in roots:
        cache = Path(root).resolve().parent / "pkgs"
        if cache in seen or not cache.is_dir():
            continue
        seen.add(cache)
        size = directory_size(cache)
        findings.append(
            Finding(
                "installation",
                "package-cache",
                "info",
                f"The package cache {cache} holds {size / 2**30:.2f} GiB.",
            )
        )
    return findings


def directory_size(path: Path) -> int:
    """Bytes under ``path`` (hard links counted once, symlinks not followed)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            if (st.st_dev, st.st_ino) not in seen:
                                seen.add((st.st_dev, st.st_ino))
                                total += st.st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def database_path(url: str) -> Path | None:
    """The file of a SQLite database URL (None for other databases)."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


def filesystem_type(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (from /proc/mounts; "" when unknown)."""
    target = os.path.realpath(path if path.exists() else path.parent)
    best, kind = "", ""
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3:
                    mount = parts[1].replace("\\040", " ")
                    if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(
                        best
                    ):
                        best, kind = mount, parts[2]
    except OSError:
        return ""
    return kind
