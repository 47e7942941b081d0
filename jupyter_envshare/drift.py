"""Installed state vs lock -> ``DriftReport``: a stat digest first, records parsed only when it changed.

The digest is conda-meta's entries with their (inode, size, mtime_ns, mode, owner) plus the
``*.dist-info`` names of each ``site-packages``; records are read only when their own entry changed,
and then only their top-level scalars. ``report`` stats every record (a record can be rewritten in
place, which changes neither its name nor its directory). ``status``, asked for every environment by
the list view, costs one ``scandir`` of ``conda-meta`` (names and inodes come free with it) and a few
``stat`` calls: it stats every record again only when that listing or the directory's mtime changed,
or when the last full digest is older than ``record_stat_interval``. Deep checks (hashing every linked
file) run only when asked for. Nothing here spawns a process or raises on a broken environment: what
cannot be read becomes a finding.
"""

# ruff: noqa: PTH100, PTH112, PTH116, PTH118, PTH119
# Hot paths work on str paths on purpose (as discovery does): a warm status makes a stat call per
# record, and a pathlib object for each would cost more than the call itself.

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from .config import user_name
from .discovery import Problem
from .packages import (
    CONDA,
    PYPI,
    PackageRef,
    channel_alias,
    channel_of_url,
    normalize_channel,
    normalize_name,
)

IN_SYNC = "in-sync"
DRIFTED = "drifted"
UNLOCKED = "unlocked"
UNAVAILABLE = "unavailable"

ADDED = "added"
REMOVED = "removed"
VERSION = "version"
BUILD = "build"
CHANNEL = "channel"
ARTIFACT = "artifact"
PIP_OVERLAY = "pip-overlay"
FILE_MODIFIED = "file-modified"
FILE_MISSING = "file-missing"

FROZEN_MARKER = "frozen"  # conda-meta/frozen (CEP 22): the environment must not be changed
HISTORY = "history"

Progress = Callable[[int, int], None]

# A conda-meta entry as the digest sees it: name, inode, size, mtime_ns, mode, uid (a negative errno in
# place of the inode when it cannot be stat'ed). Not ctime: republishing (chmod a+r of records that
# already are) must not re-parse anything; a real chmod or chown changes mode or uid, and with them
# whether the record can be read.
_MetaEntry = tuple[str, int, int, int, int, int]
_Listing = tuple[tuple[str, int], ...]  # (name, inode as readdir gives it) of every conda-meta entry
_DirKey = tuple[int, ...]

# Records written pretty-printed with two spaces (conda, mamba, rattler) have their top-level members,
# and only those, on lines starting with exactly two spaces and a quote: the scalars drift needs are
# picked from those lines without decoding the long ``files``/``paths_data`` lists.
_TOP_FIELDS = re.compile(
    rb'\n  "(name|version|build|channel|subdir|url|md5|sha256)": ("(?:[^"\\\n]|\\.)*"|null)'
)
_DIST_INFO = b".dist-info/"
_HASH_CHUNK = 1 << 20
_REPORTS_PER_PREFIX = 8
_NO_FILE_CHECK = frozenset({"pyc_file"})  # compiled at install time; conda records no hash for them

# An environment names a handful of channels thousands of times: normalize each spelling once.
_normalized_channel = functools.lru_cache(maxsize=4096)(normalize_channel)


class LockLike(Protocol):
    """What drift needs of a lock: provenance's ``LockInfo`` or any object with these attributes."""

    @property
    def path(self) -> str | os.PathLike[str] | None: ...

    @property
    def format(self) -> str: ...

    @property
    def sha256(self) -> str | None: ...

    @property
    def packages(self) -> Sequence[PackageRef]: ...


@dataclass(frozen=True)
class InstalledFile:
    """One file a conda record says it linked into the prefix, with what it should hash to."""

    path: str
    path_type: str = "hardlink"
    sha256: str = ""
    sha256_in_prefix: str = ""
    size: int | None = None
    prefix_placeholder: str = ""


@dataclass(frozen=True)
class InstalledState:
    """What a prefix holds: conda records, pip distributions no record owns, and what could not be read."""

    prefix: str
    packages: tuple[PackageRef, ...]
    findings: tuple[Problem, ...] = ()
    # conda package name -> its files (filled by ``installed_state(files=True)`` only)
    files: Mapping[str, tuple[InstalledFile, ...]] = field(default_factory=dict, compare=False)
    # conda package name -> path of its conda-meta record
    records: Mapping[str, str] = field(default_factory=dict, compare=False)
    # names (from file names) of packages whose records could not be read: never reported as removed
    unreadable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DriftChange:
    """One difference between lock and environment; ``locked``/``installed`` are short strings."""

    kind: str
    package: str
    locked: str | None
    installed: str | None
    path: str | None = None  # the file, for file-modified and file-missing

    def as_json(self) -> dict[str, Any]:
        """The change as the REST API returns it."""
        doc: dict[str, Any] = {
            "kind": self.kind,
            "package": self.package,
            "locked": self.locked,
            "installed": self.installed,
        }
        if self.path is not None:
            doc["path"] = self.path
        return doc


@dataclass(frozen=True)
class LockSummary:
    """Which lock a report compared against."""

    path: str | None
    format: str
    sha256: str | None

    def as_json(self) -> dict[str, Any]:
        """The lock as the REST API returns it."""
        return {"path": self.path, "format": self.format, "sha256": self.sha256}


@dataclass(frozen=True)
class DriftReport:
    """Installed state against the lock: status, changes and health findings."""

    status: str
    checked_at: str
    lock: LockSummary | None
    changes: tuple[DriftChange, ...] = ()
    deep: bool = False
    findings: tuple[Problem, ...] = ()

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of change present."""
        return frozenset(c.kind for c in self.changes)

    def as_json(self) -> dict[str, Any]:
        """The report in the shape of ``GET envs/{name}/drift``."""
        return {
            "status": self.status,
            "checked_at": self.checked_at,
            "lock": self.lock.as_json() if self.lock is not None else None,
            "changes": [c.as_json() for c in self.changes],
            "findings": [
                {"kind": p.kind, "message": p.message, "severity": p.severity} for p in self.findings
            ],
            "deep": self.deep,
        }


# -- reading records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    """One conda-meta record as far as drift needs it (or why it cannot be used)."""

    package: PackageRef | None
    dist_infos: frozenset[str] = frozenset()
    problem: Problem | None = None
    files: tuple[InstalledFile, ...] | None = None


def _fast_fields(data: bytes) -> dict[str, str] | None:
    if not data.startswith(b'{\n  "') or not data[-16:].rstrip().endswith(b"\n}"):
        return None
    found: dict[str, str] = {}
    try:
        for key, raw in _TOP_FIELDS.findall(data):
            if raw == b"null":
                continue
            found[key.decode()] = json.loads(raw) if b"\\" in raw else raw[1:-1].decode()
    except ValueError:  # includes UnicodeDecodeError
        return None
    return found if "name" in found and "version" in found else None


def _dist_infos_in(data: bytes) -> frozenset[str]:
    # Every path of the record's "files" that runs through a NAME.dist-info directory. The list ends
    # at the first line that is exactly "  ]"; should that bound be wrong, the search only goes on
    # into other lists of the same record (paths_data repeats the same paths), never into another.
    names: set[str] = set()
    find, rfind = data.find, data.rfind
    start = find(b'\n  "files": [')
    end = find(b"\n  ]", start) if start >= 0 else -1
    if start < 0 or end < 0:
        start, end = 0, len(data)
    pos = find(_DIST_INFO, start, end)
    while pos >= 0:
        segment = data[rfind(b"/", max(0, pos - 512), pos) + 1 : pos]
        if segment and b'"' not in segment and b"\n" not in segment:
            names.add(segment.decode("utf-8", "replace") + ".dist-info")
        pos = find(_DIST_INFO, pos + len(_DIST_INFO), end)
    return frozenset(names)


def _dist_infos_of(files: object) -> frozenset[str]:
    names: set[str] = set()
    if isinstance(files, list):
        for item in files:
            if isinstance(item, str) and ".dist-info/" in item:
                names.add(item.split(".dist-info/", 1)[0].rsplit("/", 1)[-1] + ".dist-info")
    return frozenset(names)


def _safe_relpath(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def _files_of(doc: Mapping[str, Any]) -> tuple[InstalledFile, ...]:
    paths_data = doc.get("paths_data")
    entries = paths_data.get("paths") if isinstance(paths_data, dict) else None
    out: list[InstalledFile] = []
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            rel = entry.get("_path")
            if not isinstance(rel, str) or not _safe_relpath(rel):
                continue
            size = entry.get("size_in_bytes")
            out.append(
                InstalledFile(
                    path=rel,
                    path_type=str(entry.get("path_type") or "hardlink"),
                    sha256=str(entry.get("sha256") or ""),
                    sha256_in_prefix=str(entry.get("sha256_in_prefix") or ""),
                    size=size if isinstance(size, int) else None,
                    prefix_placeholder=str(entry.get("prefix_placeholder") or ""),
                )
            )
        return tuple(out)
    # Records from before paths_data (conda < 4.3) only list the files: existence is all we can check.
    files = doc.get("files")
    if isinstance(files, list):
        out.extend(InstalledFile(path=f) for f in files if isinstance(f, str) and _safe_relpath(f))
    return tuple(out)


def _bad_record(path: str, why: str) -> _Parsed:
    return _Parsed(
        None,
        problem=Problem(
            "bad-record",
            f"{path} {why}; the package it describes is left out of the comparison.",
            "warning",
        ),
    )


def _parse_record(path: str, *, with_files: bool = False) -> _Parsed:
    """One conda-meta record -> package, owned dist-info directories (and files when asked for)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        return _bad_record(path, f"cannot be read ({err.strerror or err})")
    fields = None if with_files else _fast_fields(data)
    files: tuple[InstalledFile, ...] | None = None
    if fields is not None:
        dist_infos = _dist_infos_in(data)
        values: Mapping[str, Any] = fields
    else:
        try:
            doc = json.loads(data)
        except ValueError as err:
            return _bad_record(path, f"is not valid JSON ({err})")
        if not isinstance(doc, dict):
            return _bad_record(path, "is not a JSON object")
        values = doc
        dist_infos = _dist_infos_of(doc.get("files"))
        if with_files:
            files = _files_of(doc)
    name, version = values.get("name"), values.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        return _bad_record(path, "names no package (no 'name' or 'version')")

    def text(key: str) -> str:
        value = values.get(key)
        return value if isinstance(value, str) else ""

    url, channel = text("url"), text("channel")
    package = PackageRef(
        name=name,
        version=version,
        kind=CONDA,
        build=text("build"),
        channel=_normalized_channel(channel) if channel else channel_of_url(url),
        subdir=text("subdir"),
        url=url,
        md5=text("md5"),
        sha256=text("sha256"),
        extra={"record": path},
    )
    return _Parsed(package, dist_infos, None, files)


def _name_from_record_file(filename: str) -> str:
    # conda-meta/NAME-VERSION-BUILD.json: what a record that cannot be read was about
    stem = filename[: -len(".json")] if filename.endswith(".json") else filename
    parts = stem.rsplit("-", 2)
    return parts[0].lower() if len(parts) == 3 else stem.lower()


def _read_pip_dist(path: str) -> tuple[PackageRef | None, Problem | None]:
    """A ``*.dist-info`` directory -> ``PackageRef(kind="pypi")`` with INSTALLER and PEP 610 URL."""
    dirname = os.path.basename(path)[: -len(".dist-info")]
    name, _, version = dirname.partition("-")
    problem: Problem | None = None
    try:
        with open(os.path.join(path, "METADATA"), "rb") as fh:
            head = fh.read(16384).decode("utf-8", "replace")
        for line in head.splitlines():
            if not line.strip():
                break
            key, sep, value = line.partition(":")
            if sep and key.lower() == "name":
                name = value.strip()
            elif sep and key.lower() == "version":
                version = value.strip()
    except OSError as err:
        problem = Problem(
            "bad-dist-info", f"{path}/METADATA cannot be read ({err.strerror or err}).", "warning"
        )
    if not name or not version:
        return None, problem or Problem("bad-dist-info", f"{path} names no distribution.", "warning")
    installer = ""
    try:
        with open(os.path.join(path, "INSTALLER"), "rb") as fh:
            installer = fh.read(256).decode("utf-8", "replace").strip()
    except OSError:
        pass
    direct_url = ""
    direct: dict[str, Any] = {}
    try:
        with open(os.path.join(path, "direct_url.json"), "rb") as fh:
            loaded = json.loads(fh.read())
        if isinstance(loaded, dict):
            direct = loaded
            direct_url = str(loaded.get("url") or "")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        problem = Problem("bad-dist-info", f"{path}/direct_url.json cannot be read ({err}).", "warning")
    extra: dict[str, Any] = {"dist_info": path}
    if direct:
        extra["direct_url"] = direct
    ref = PackageRef(
        name=name,
        version=version,
        kind=PYPI,
        installer=installer,
        direct_url=direct_url,
        extra=extra,
    )
    return ref, problem


# -- the cheap digest ---------------------------------------------------------------------------------


def _scan_meta(meta: str, *, stats: bool) -> tuple[_DirKey, _Listing, tuple[_MetaEntry, ...] | None]:
    """conda-meta's own key, its listing, and (with ``stats``) every entry's stat."""
    # Listing through a directory fd makes each stat an fstatat of a bare name instead of a walk
    # down the whole prefix path (~20% less on a 1,000-record conda-meta).
    listing: list[tuple[str, int]] = []
    entries: list[_MetaEntry] = []
    append = entries.append
    fd = os.open(meta, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.fstat(fd)
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
        with os.scandir(fd) as it:
            for entry in it:
                listing.append((entry.name, entry.inode()))
                if not stats:
                    continue
                try:
                    st = entry.stat()
                except OSError as err:
                    append((entry.name, -(err.errno or 1), 0, 0, 0, 0))
                    continue
                append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid))
    finally:
        os.close(fd)
    return key, tuple(listing), tuple(entries) if stats else None


def _dir_key(path: str) -> _DirKey:
    try:
        st = os.stat(path)
    except OSError as err:
        return (-(err.errno or 1),)
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def _site_dirs(lib: str) -> tuple[str, ...]:
    try:
        with os.scandir(lib) as it:
            names = sorted(e.name for e in it if e.name.startswith("python3") and e.is_dir())
    except OSError:
        return ()
    found = [f"{lib}/{n}/site-packages" for n in names]
    return tuple(p for p in found if os.path.isdir(p))


def _dist_info_names(site: str) -> tuple[str, ...]:
    try:
        with os.scandir(site) as it:
            return tuple(sorted(e.name for e in it if e.name.endswith(".dist-info")))
    except OSError:
        return ()


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _health(
    prefix: str,
    prefix_key: _DirKey,
    meta_key: _DirKey,
    meta: tuple[_MetaEntry, ...],
    sites: Mapping[str, tuple[_DirKey, tuple[str, ...]]],
) -> list[Problem]:
    """Findings about how the environment is published (none needs a record to be read)."""
    problems: list[Problem] = []
    records = [e for e in meta if e[0].endswith(".json") and e[1] >= 0]
    private = [e[0] for e in records if not e[4] & stat.S_IROTH]
    if private:
        problems.append(
            Problem(
                "private-records",
                f"{len(private)} of {len(records)} records in {prefix}/conda-meta (e.g. {private[0]}) "
                "are not readable by other users (mode 0600 or stricter): they cannot inspect this "
                "environment. Fix: chmod a+r conda-meta/*.json",
                "warning",
            )
        )
    owners = sorted({e[5] for e in records})
    if len(owners) > 1:
        problems.append(
            Problem(
                "mixed-owners",
                f"Records in {prefix}/conda-meta are owned by several users ("
                + ", ".join(user_name(u) for u in owners)
                + "): someone other than the environment's manager changed it.",
                "warning",
            )
        )
    writable = [
        path
        for path, key in [(prefix, prefix_key), (f"{prefix}/conda-meta", meta_key)]
        + [(site, value[0]) for site, value in sites.items()]
        if len(key) > 1 and key[3] & (stat.S_IWGRP | stat.S_IWOTH)
    ]
    if writable:
        problems.append(
            Problem(
                "writable-env",
                "Writable by group or others: " + ", ".join(writable) + ". Any of those users can change "
                "this shared environment under everyone else. Fix: chmod go-w",
                "warning",
            )
        )
    if not any(e[0] == FROZEN_MARKER for e in meta):
        problems.append(
            Problem(
                "not-frozen",
                f"{prefix}/conda-meta/{FROZEN_MARKER} is missing: conda will modify this shared environment "
                "for anyone allowed to write to it (CEP 22 frozen marker).",
                "info",
            )
        )
    return problems


# -- comparison ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _channel_label(channel: str) -> str:
    # Under the site's channel alias a channel is known by its short name, as conda shows it.
    text = _normalized_channel(channel)
    alias = channel_alias()
    if alias and text.startswith(alias + "/"):
        return text[len(alias) + 1 :]
    return text


def _same_channel(locked: str, installed: str) -> bool:
    if not locked or not installed:
        return True  # one side does not say: no claim either way
    a, b = _channel_label(locked), _channel_label(installed)
    if a == b:
        return True
    if "://" not in a or "://" not in b:
        # A short name against a URL: all we know is the channel's name.
        return a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]
    return False


def _channel_of(ref: PackageRef) -> str:
    return ref.channel or channel_of_url(ref.url)


def _compare(locked: PackageRef, installed: PackageRef) -> DriftChange | None:
    name = installed.name
    if locked.version != installed.version:
        return DriftChange(VERSION, name, locked.dist, installed.dist)
    if locked.kind == PYPI or installed.kind == PYPI:
        return None
    if locked.build and installed.build and locked.build != installed.build:
        return DriftChange(BUILD, name, locked.dist, installed.dist)
    lc, ic = _channel_of(locked), _channel_of(installed)
    if not _same_channel(lc, ic):
        return DriftChange(CHANNEL, name, _normalized_channel(lc), _normalized_channel(ic))
    if locked.sha256 and installed.sha256:
        if locked.sha256.lower() != installed.sha256.lower():
            return DriftChange(ARTIFACT, name, f"sha256:{locked.sha256}", f"sha256:{installed.sha256}")
    elif locked.md5 and installed.md5 and locked.md5.lower() != installed.md5.lower():
        return DriftChange(ARTIFACT, name, f"md5:{locked.md5}", f"md5:{installed.md5}")
    return None


def compare_packages(
    locked: Iterable[PackageRef], installed: Iterable[PackageRef], unreadable: frozenset[str] = frozenset()
) -> tuple[DriftChange, ...]:
    """Package-level changes between a lock and an installed state (no file checks)."""
    lock_by_key = {p.key: p for p in locked}
    inst_by_key = {p.key: p for p in installed}
    changes: list[DriftChange] = []
    for key, inst in inst_by_key.items():
        lref = lock_by_key.get(key)
        if lref is None:
            changes.append(
                DriftChange(PIP_OVERLAY if inst.kind == PYPI else ADDED, inst.name, None, inst.dist)
            )
            continue
        change = _compare(lref, inst)
        if change is not None:
            changes.append(change)
    for key, lref in lock_by_key.items():
        if key in inst_by_key:
            continue
        if lref.kind == CONDA and normalize_name(lref.name) in unreadable:
            continue  # its record exists but cannot be read: a finding says so
        changes.append(DriftChange(REMOVED, lref.name, lref.dist, None))
    return tuple(sorted(changes, key=_change_order))


def _change_order(change: DriftChange) -> tuple[str, str, str]:
    return (change.package.lower(), change.kind, change.path or "")


# -- deep checks --------------------------------------------------------------------------------------


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_file(prefix: str, package: str, item: InstalledFile) -> DriftChange | Problem | None:
    full = f"{prefix}/{item.path}"
    # Without a hash made after prefix rewriting, a rewritten file cannot be checked: only its presence.
    expected = item.sha256_in_prefix or ("" if item.prefix_placeholder else item.sha256)
    if item.path_type in ("softlink", "directory") or not expected:
        if os.path.lexists(full):
            return None
        return DriftChange(
            FILE_MISSING, package, f"sha256:{expected}" if expected else "present", None, item.path
        )
    try:
        actual = _sha256_of(full)
    except FileNotFoundError:
        return DriftChange(FILE_MISSING, package, f"sha256:{expected}", None, item.path)
    except OSError as err:
        return Problem("unreadable-file", f"{full} cannot be hashed ({err.strerror or err}).", "warning")
    if actual != expected.lower():
        return DriftChange(FILE_MODIFIED, package, f"sha256:{expected}", f"sha256:{actual}", item.path)
    return None


def _deep_changes(
    prefix: str, records: Mapping[str, str], progress: Progress | None
) -> tuple[list[DriftChange], list[Problem]]:
    work: list[tuple[str, InstalledFile]] = []
    problems: list[Problem] = []
    for package, record in sorted(records.items()):
        # A full parse: a record whose frame looked right to the cheap reader may still be damaged.
        parsed = _parse_record(record, with_files=True)
        if parsed.problem is not None:
            problems.append(parsed.problem)
        work.extend((package, f) for f in parsed.files or () if f.path_type not in _NO_FILE_CHECK)
    total = len(work)
    step = max(1, total // 1000)
    if progress is not None:
        progress(0, total)
    changes: list[DriftChange] = []
    for done, (package, item) in enumerate(work, 1):
        outcome = _check_file(prefix, package, item)
        if isinstance(outcome, DriftChange):
            changes.append(outcome)
        elif isinstance(outcome, Problem):
            problems.append(outcome)
        if progress is not None and (done % step == 0 or done == total):
            progress(done, total)
    return changes, problems


# -- state --------------------------------------------------------------------------------------------


def _assemble_state(
    prefix: str,
    parsed: Iterable[tuple[str, _Parsed]],
    dists: Iterable[tuple[PackageRef | None, Problem | None]],
    files: Mapping[str, tuple[InstalledFile, ...]] | None = None,
) -> InstalledState:
    packages: dict[tuple[str, str], PackageRef] = {}
    records: dict[str, str] = {}
    findings: list[Problem] = []
    unreadable: set[str] = set()
    for filename, item in parsed:
        if item.package is None:
            unreadable.add(_name_from_record_file(filename))
            if item.problem is not None:
                findings.append(item.problem)
            continue
        key = item.package.key
        if key in packages:
            findings.append(
                Problem(
                    "duplicate-record",
                    f"{prefix}/conda-meta holds two records for {item.package.name} "
                    f"({packages[key].dist} and {item.package.dist}).",
                    "warning",
                )
            )
        packages[key] = item.package
        records[item.package.name] = f"{prefix}/conda-meta/{filename}"
    for ref, problem in dists:
        if problem is not None:
            findings.append(problem)
        if ref is not None and ref.key not in packages:
            packages[ref.key] = ref
    return InstalledState(
        prefix=prefix,
        packages=tuple(packages[k] for k in sorted(packages)),
        findings=tuple(findings),
        files=dict(files or {}),
        records=records,
        unreadable=frozenset(unreadable),
    )


def installed_state(prefix: str | os.PathLike[str], *, files: bool = True) -> InstalledState:
    """Read a prefix's conda records and unowned pip distributions now (no cache); see ``DriftEngine``."""
    root = os.path.abspath(os.fspath(prefix))
    meta = f"{root}/conda-meta"
    try:
        names = sorted(e[0] for e in _scan_meta(meta, stats=False)[1] if e[0].endswith(".json"))
    except OSError as err:
        return InstalledState(
            root, (), (Problem("unavailable", f"{meta} cannot be listed: {err.strerror or err}", "error"),)
        )
    parsed = [(n, _parse_record(f"{meta}/{n}", with_files=files)) for n in names]
    owned: frozenset[str] = frozenset().union(*(p.dist_infos for _, p in parsed))
    dists = [
        _read_pip_dist(f"{site}/{name}")
        for site in _site_dirs(f"{root}/lib")
        for name in _dist_info_names(site)
        if name not in owned
    ]
    file_map = {p.package.name: p.files for _, p in parsed if p.package is not None and p.files is not None}
    return _assemble_state(root, parsed, dists, file_map if files else None)


# -- the engine ---------------------------------------------------------------------------------------


class _PrefixCache:
    """What one prefix looked like at the last check (guarded by its own lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget what was read (the environment became unreadable)."""
        self.fingerprint: tuple[Any, ...] | None = None
        self.meta: tuple[_MetaEntry, ...] | None = None
        self.meta_dir_key: _DirKey | None = None
        self.listing: _Listing | None = None
        self.stated_at = float("-inf")
        self.site_dirs: tuple[str, ...] = ()
        self.sites: dict[str, tuple[_DirKey, tuple[str, ...]]] = {}
        self.records: dict[str, tuple[_MetaEntry, _Parsed]] = {}
        self.dists: dict[str, tuple[_DirKey, PackageRef | None, Problem | None]] = {}
        self.state: InstalledState | None = None
        self.health: tuple[Problem, ...] = ()
        self.history_mtime: int | None = None
        self.reports: dict[Hashable, DriftReport] = {}
        self.statuses: dict[Hashable, str] = {}


class DriftEngine:
    """Drift reports for many prefixes: a stat digest decides what to re-read; thread-safe."""

    def __init__(self, record_stat_interval: float = 5.0) -> None:
        # How long status() trusts the records' stats while conda-meta's listing and mtime stay the
        # same: only an in-place rewrite of a record (no conda transaction does one) waits that long.
        self.record_stat_interval = record_stat_interval
        self._lock = threading.Lock()
        self._prefixes: dict[str, _PrefixCache] = {}

    # -- public ---------------------------------------------------------------------------------

    def report(
        self,
        prefix: str | os.PathLike[str],
        lock: LockLike | None,
        deep: bool = False,
        progress: Progress | None = None,
    ) -> DriftReport:
        """The drift report of ``prefix`` against ``lock``; ``deep`` also hashes every linked file."""
        root = os.path.abspath(os.fspath(prefix))
        cache = self._cache(root)
        with cache.lock:
            base, records = self._base_report(cache, root, lock)
        if not deep:
            return replace(base, checked_at=_utc_now())
        if base.status == UNAVAILABLE:
            return replace(base, deep=True, checked_at=_utc_now())
        # Hashing can take minutes: done outside the lock, so status calls are never held up by it.
        file_changes, problems = _deep_changes(root, records, progress)
        # Files that differ from their own records are drift, with or without a lock.
        status = DRIFTED if file_changes else base.status
        return replace(
            base,
            status=status,
            changes=tuple(sorted(base.changes + tuple(file_changes), key=_change_order)),
            findings=base.findings + tuple(p for p in problems if p not in base.findings),
            deep=True,
            checked_at=_utc_now(),
        )

    def status(self, prefix: str | os.PathLike[str], lock: LockLike | None) -> str:
        """``in-sync``, ``drifted``, ``unlocked`` or ``unavailable``, as cheaply as the disk allows."""
        root = os.path.abspath(os.fspath(prefix))
        cache = self._cache(root)
        with cache.lock:
            if self._refresh(cache, root, every_record=False) is not None or cache.state is None:
                return UNAVAILABLE
            if lock is None:
                return UNLOCKED
            # The status depends on the packages only: no lock-file stat, no report to build.
            key = _lock_identity(lock)
            status = cache.statuses.get(key)
            if status is None:
                state = cache.state
                changed = compare_packages(lock.packages, state.packages, state.unreadable)
                status = DRIFTED if changed else IN_SYNC
                self._remember_status(cache, key, status)
            return status

    def installed(self, prefix: str | os.PathLike[str]) -> InstalledState:
        """The installed packages of ``prefix`` (without files), as cheaply checked as ``status``."""
        root = os.path.abspath(os.fspath(prefix))
        cache = self._cache(root)
        with cache.lock:
            problem = self._refresh(cache, root, every_record=False)
            if problem is not None or cache.state is None:
                return InstalledState(root, (), (problem,) if problem else ())
            return cache.state

    def forget(self, prefix: str | os.PathLike[str]) -> None:
        """Drop what is cached about ``prefix`` (an environment that was removed)."""
        with self._lock:
            self._prefixes.pop(os.path.abspath(os.fspath(prefix)), None)

    # -- internals ------------------------------------------------------------------------------

    def _cache(self, root: str) -> _PrefixCache:
        with self._lock:
            cache = self._prefixes.get(root)
            if cache is None:
                cache = self._prefixes[root] = _PrefixCache()
            return cache

    def _base_report(
        self, cache: _PrefixCache, root: str, lock: LockLike | None
    ) -> tuple[DriftReport, Mapping[str, str]]:
        problem = self._refresh(cache, root)
        summary = _summary(lock)
        if problem is not None or cache.state is None:
            why = (problem,) if problem is not None else ()
            return DriftReport(UNAVAILABLE, _utc_now(), summary, findings=why), {}
        state = cache.state
        lock_path = os.fspath(lock.path) if lock is not None and lock.path is not None else None
        lock_mtime = _mtime_ns(lock_path) if lock_path else None
        key: Hashable = None if lock is None else (_lock_identity(lock), lock_path, lock.format, lock_mtime)
        cached = cache.reports.get(key)
        if cached is not None:
            return cached, state.records
        findings = list(state.findings) + list(cache.health)
        changes: tuple[DriftChange, ...] = ()
        if lock is None:
            status = UNLOCKED
        else:
            changes = compare_packages(lock.packages, state.packages, state.unreadable)
            status = DRIFTED if changes else IN_SYNC
            findings.extend(p for p in getattr(lock, "problems", ()) or () if isinstance(p, Problem))
            if (
                lock_mtime is not None
                and cache.history_mtime is not None
                and cache.history_mtime > lock_mtime
            ):
                findings.append(
                    Problem(
                        "history-after-lock",
                        f"{root}/conda-meta/history changed after the lock {lock_path} was written: "
                        "the environment was modified since it was locked.",
                        "warning",
                    )
                )
        report = DriftReport(status, _utc_now(), summary, changes, False, tuple(findings))
        if len(cache.reports) >= _REPORTS_PER_PREFIX:
            cache.reports.pop(next(iter(cache.reports)))
        cache.reports[key] = report
        if lock is not None:
            self._remember_status(cache, _lock_identity(lock), status)
        return report, state.records

    @staticmethod
    def _remember_status(cache: _PrefixCache, key: Hashable, status: str) -> None:
        if len(cache.statuses) >= _REPORTS_PER_PREFIX:
            cache.statuses.pop(next(iter(cache.statuses)))
        cache.statuses[key] = status

    def _refresh(self, cache: _PrefixCache, root: str, every_record: bool = True) -> Problem | None:
        """Bring ``cache`` up to date with the disk; re-read only what changed. Returns why not."""
        prefix_key = _dir_key(root)
        if prefix_key[0] < 0:
            cache.reset()
            return Problem("unavailable", f"{root} cannot be read: {os.strerror(-prefix_key[0])}", "error")
        meta_dir = f"{root}/conda-meta"
        now = time.monotonic()
        trust = not every_record and now - cache.stated_at < self.record_stat_interval
        try:
            meta_key, listing, meta = _scan_meta(meta_dir, stats=not trust)
            if meta is None:
                if cache.meta is not None and listing == cache.listing and meta_key == cache.meta_dir_key:
                    meta = cache.meta
                else:  # a record came, went or was replaced: stat them all now
                    meta_key, listing, meta = _scan_meta(meta_dir, stats=True)
            if meta is not cache.meta:
                cache.stated_at = now
        except OSError as err:
            cache.reset()
            return Problem("unavailable", f"{meta_dir} cannot be read: {err.strerror or err}", "error")
        assert meta is not None
        cache.listing, cache.meta_dir_key = listing, meta_key
        if meta != cache.meta:
            # lib/python3.X directories come and go with conda transactions, which change conda-meta.
            cache.site_dirs = _site_dirs(f"{root}/lib")
            cache.meta = meta
        sites: dict[str, tuple[_DirKey, tuple[str, ...]]] = {}
        for site in cache.site_dirs:
            key = _dir_key(site)
            known = cache.sites.get(site)
            # A directory's mtime moves whenever an entry is added, removed or renamed in it.
            sites[site] = known if known is not None and known[0] == key else (key, _dist_info_names(site))
        cache.sites = sites

        fingerprint = (prefix_key[3:], meta_key[3:], meta, tuple(sites.items()))
        if fingerprint == cache.fingerprint:
            return None
        self._rebuild(cache, root, meta, sites)
        cache.health = tuple(_health(root, prefix_key, meta_key, meta, sites))
        cache.fingerprint = fingerprint
        cache.reports.clear()
        cache.statuses.clear()
        return None

    def _rebuild(
        self,
        cache: _PrefixCache,
        root: str,
        meta: tuple[_MetaEntry, ...],
        sites: Mapping[str, tuple[_DirKey, tuple[str, ...]]],
    ) -> None:
        records: dict[str, tuple[_MetaEntry, _Parsed]] = {}
        history_mtime: int | None = None
        for entry in meta:
            name = entry[0]
            if name == HISTORY and entry[1] >= 0:
                history_mtime = entry[3]
            if not name.endswith(".json"):
                continue
            known = cache.records.get(name)
            if known is not None and known[0] == entry:
                records[name] = known
            elif entry[1] < 0:
                why = f"cannot be read ({os.strerror(-entry[1])})"
                records[name] = (entry, _bad_record(f"{root}/conda-meta/{name}", why))
            elif not stat.S_ISREG(entry[4]):
                records[name] = (entry, _bad_record(f"{root}/conda-meta/{name}", "is not a regular file"))
            else:
                records[name] = (entry, _parse_record(f"{root}/conda-meta/{name}"))
        cache.records = records
        cache.history_mtime = history_mtime

        owned: frozenset[str] = frozenset().union(*(p.dist_infos for _, p in records.values()))
        dists: dict[str, tuple[_DirKey, PackageRef | None, Problem | None]] = {}
        for site, (_, names) in sites.items():
            for name in names:
                if name in owned:
                    continue
                path = f"{site}/{name}"
                key = _dir_key(path)
                known_dist = cache.dists.get(path)
                if known_dist is not None and known_dist[0] == key:
                    dists[path] = known_dist
                else:
                    dists[path] = (key, *_read_pip_dist(path))
        cache.dists = dists
        parsed = sorted((name, item[1]) for name, item in records.items())
        cache.state = _assemble_state(root, parsed, ((d[1], d[2]) for d in dists.values()))


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _lock_identity(lock: LockLike) -> Hashable:
    # One file can lock several platforms (conda-lock) or environments (pixi): the file's hash plus
    # which part was read. A lock without a hash (one built in memory) is identified by what it locks.
    if not lock.sha256:
        return hash(tuple(lock.packages))
    return (lock.sha256, getattr(lock, "platform", None), getattr(lock, "environment", None))


def _summary(lock: LockLike | None) -> LockSummary | None:
    if lock is None:
        return None
    return LockSummary(
        path=os.fspath(lock.path) if lock.path is not None else None, format=lock.format, sha256=lock.sha256
    )
