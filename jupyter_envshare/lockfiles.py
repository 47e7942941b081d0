"""Lock files: read and write conda ``@EXPLICIT`` lists, conda-lock v1 and pixi.lock as ``LockInfo``.

Reading never raises on bad input: a garbled or truncated lock becomes a ``Problem`` with a message a
person can act on, and the lines that could still be read are kept. Only ``write_lock`` writes. Conda
semantics (records, versions, package URLs, lock files) come from py-rattler.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from rattler import (
    BuildString,
    CondaLockedBinaryPackage,
    LockChannel,
    LockFile,
    LockPlatform,
    MatchSpec,
    NoArchType,
    PackageRecord,
    PypiLockedPackage,
    RepoDataRecord,
    Version,
)

from ._version import __version__
from .discovery import Problem
from .packages import CONDA, PYPI, PackageRef, channel_alias, channel_of_url, normalize_channel

__all__ = [
    "CONDA_LOCK",
    "DEFAULT_ENVIRONMENT",
    "EXPLICIT",
    "LOCK_FORMATS",
    "PIXI",
    "LockInfo",
    "detect_lock_format",
    "package_ref",
    "read_lock",
    "write_lock",
]
EXPLICIT = "explicit"
CONDA_LOCK = "conda-lock"
PIXI = "pixi"
LOCK_FORMATS = (EXPLICIT, CONDA_LOCK, PIXI)
"""Lock formats read and written: conda's ``@EXPLICIT`` list, conda-lock v1 YAML, pixi.lock (v6/v7)."""

DEFAULT_ENVIRONMENT = "default"

_VERSION_LINE = re.compile(r"^version:\s*['\"]?(\d+)['\"]?\s*(?:#.*)?$", re.MULTILINE)
_PLATFORM_LINE = re.compile(r"^#\s*platform:\s*(\S+)")
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_SHA256_FRAGMENT = re.compile(r"sha256[:=]([0-9a-fA-F]{64})")
_BUILD_NUMBER = re.compile(r"_(\d+)$")
_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
_BAD_LINE_SHOWN = 80


@dataclass(frozen=True)
class LockInfo:
    """A lock file as read for one platform: its packages, or why they could not be read."""

    path: str
    format: str  # explicit | conda-lock | pixi; "" when not recognised
    sha256: str
    platform: str
    packages: tuple[PackageRef, ...] = ()
    environment: str | None = None  # the environment read from a pixi lock
    channels: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # platforms the file has packages for
    mtime: float | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def readable(self) -> bool:
        """Whether the packages for ``platform`` could be read (bad lines aside)."""
        return not any(p.severity == "error" for p in self.problems)


def _hex(digest: bytes | None) -> str:
    return digest.hex() if digest else ""


def _rattler_failed(err: BaseException) -> bool:
    """Whether ``err`` is rattler failing (a Rust panic is a BaseException) rather than an interrupt."""
    return not isinstance(err, (KeyboardInterrupt, SystemExit, GeneratorExit))


def _shown(line: str) -> str:
    return repr(line if len(line) <= _BAD_LINE_SHOWN else line[:_BAD_LINE_SHOWN] + "...")


def _atomic_write(path: Path, write: Callable[[Path], object], mode: int = 0o644) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _yaml_error_detail(err: yaml.YAMLError) -> str:
    """Where a YAML document breaks and why, as `` (line L, column C): reason``."""
    mark = getattr(err, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    reason = getattr(err, "problem", None) or str(err)
    return f"{at}: {reason}"


def package_ref(record: Any) -> PackageRef:
    """The ``PackageRef`` of a rattler ``RepoDataRecord`` or ``PrefixRecord`` (lock entry or installed)."""
    url = str(record.url or "")
    channel = normalize_channel(str(record.channel)) if record.channel else channel_of_url(url)
    noarch = record.noarch
    extra: dict[str, Any] = {
        "build_number": int(record.build_number),
        "depends": [str(d) for d in record.depends],
        "constrains": [str(c) for c in record.constrains],
        "noarch": "generic" if noarch.generic else "python" if noarch.python else None,
        "size": record.size,
        "license": record.license,
    }
    return PackageRef(
        name=record.name.source,
        version=str(record.version),
        kind=CONDA,
        build=str(record.build),
        channel=channel,
        subdir=str(record.subdir),
        url=url,
        md5=_hex(record.md5),
        sha256=_hex(record.sha256),
        extra=extra,
    )


def detect_lock_format(text: str) -> str:
    """``explicit``, ``conda-lock`` or ``pixi`` from a lock file's text; ``""`` when it is none of them."""
    if any(line.strip() == "@EXPLICIT" for line in text.splitlines()):
        return EXPLICIT
    match = _VERSION_LINE.search(text)
    if match is None:
        return ""
    return CONDA_LOCK if int(match.group(1)) == 1 else PIXI


def read_lock(
    path: Path | str, platform: str = "linux-64", environment: str = DEFAULT_ENVIRONMENT
) -> LockInfo:
    """The packages a lock file pins for ``platform`` (and, in a pixi lock, ``environment``)."""
    where = os.fspath(path)
    try:
        data = Path(where).read_bytes()
        mtime = Path(where).stat().st_mtime
    except OSError as err:
        message = f"Lock file {where} cannot be read: {err.strerror or err}."
        return _unreadable(LockInfo(where, "", "", platform), message)
    info = LockInfo(where, "", hashlib.sha256(data).hexdigest(), platform, mtime=mtime)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        message = f"Lock file {where} is not text (undecodable byte at offset {err.start})."
        return _unreadable(info, message)
    fmt = detect_lock_format(text)
    if fmt == EXPLICIT:
        return _read_explicit(replace(info, format=fmt), text)
    if fmt:
        return _read_rattler_lock(replace(info, format=fmt), text, environment)
    message = (
        f"Lock file {where} is in no format jupyter-envshare reads "
        "(conda explicit with @EXPLICIT, conda-lock v1, pixi.lock)."
    )
    return _unreadable(info, message)


def _unreadable(info: LockInfo, message: str) -> LockInfo:
    """``info`` with the one error that says why its packages could not be read."""
    return replace(info, problems=(Problem("bad-lock", message),))


def _read_explicit(info: LockInfo, text: str) -> LockInfo:
    declared: str | None = None
    seen_marker = False
    packages: list[PackageRef] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _PLATFORM_LINE.match(line)
            if match:
                declared = match.group(1)
            continue
        if line == "@EXPLICIT":
            seen_marker = True
            continue
        ref, reason = (None, "comes before @EXPLICIT") if not seen_marker else _explicit_ref(line)
        if ref is None:
            message = f"{info.path}, line {number}: {reason}: {_shown(line)}; the line is ignored."
            problems.append(Problem("bad-lock-line", message, "warning"))
        else:
            packages.append(ref)
    if declared:
        platforms: tuple[str, ...] = (declared,)
    else:
        platforms = tuple(sorted({p.subdir for p in packages if p.subdir and p.subdir != "noarch"}))
    info = replace(info, channels=_channels_of(packages), platforms=platforms)
    if platforms and info.platform not in platforms:
        problems.append(_platform_problem(info, platforms))
        packages = []
    return replace(info, packages=tuple(packages), problems=tuple(problems))


def _explicit_ref(line: str) -> tuple[PackageRef | None, str]:
    url, _, fragment = line.partition("#")
    url = url.strip()
    if url.startswith("/"):
        url = Path(url).as_uri()
    if "://" not in url:
        return None, "not a package URL"
    md5 = sha256 = ""
    fragment = fragment.strip()
    if fragment:
        sha = _SHA256_FRAGMENT.fullmatch(fragment)
        if sha:
            sha256 = sha.group(1).lower()
        elif _MD5.fullmatch(fragment):
            md5 = fragment.lower()
        else:
            return None, f"'#{fragment[:20]}' is neither an md5 nor a sha256:<hex> fragment"
    try:
        spec = MatchSpec.from_url(url)
    except Exception as err:
        return None, f"not a conda package URL ({err})"
    filename = url.rsplit("/", 1)[-1]
    stem = next((filename[: -len(s)] for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), filename)
    package_name = spec.name.as_package_name() if spec.name is not None else None
    if package_name is None:
        return None, "no package name in the URL"
    name = package_name.source
    version, _, build = stem[len(name) + 1 :].rpartition("-")
    try:
        Version(version)
    except Exception as err:
        return None, f"no conda version in the file name ({err})"
    parts = url.split("/")
    subdir = parts[-2] if len(parts) >= 3 else ""
    ref = PackageRef(
        name=name,
        version=version,
        build=build,
        channel=channel_of_url(url),
        subdir=subdir,
        url=url,
        md5=md5,
        sha256=sha256,
    )
    return ref, ""


def _platform_problem(info: LockInfo, platforms: Sequence[str]) -> Problem:
    has = ", ".join(platforms) or "none"
    return Problem(
        "lock-platform", f"Lock file {info.path} has no packages for {info.platform} (has: {has})."
    )


def _read_rattler_lock(info: LockInfo, text: str, environment: str) -> LockInfo:
    try:
        lock = LockFile.from_path(Path(info.path))
    except BaseException as err:  # a panic in rattler's Rust code arrives as a BaseException
        if not _rattler_failed(err):
            raise
        return _unreadable(info, _lock_parse_message(info, text, err))
    try:
        return _lock_packages(info, lock, environment)
    except BaseException as err:
        if not _rattler_failed(err):
            raise
        message = f"Lock file {info.path} cannot be read: {err}."
        return _unreadable(info, message)


def _lock_parse_message(info: LockInfo, text: str, err: BaseException) -> str:
    label = "conda-lock v1 file" if info.format == CONDA_LOCK else "pixi lock file"
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as yaml_err:
        return f"Lock file {info.path} is not valid YAML{_yaml_error_detail(yaml_err)}; is it truncated?"
    return f"Lock file {info.path} cannot be read as a {label} ({err}); is it complete?"


def _lock_packages(info: LockInfo, lock: Any, environment: str) -> LockInfo:
    # conda-lock v1 files have one unnamed environment, which rattler calls "default".
    wanted = environment if info.format == PIXI else DEFAULT_ENVIRONMENT
    env = lock.environment(wanted)
    if env is None:
        names = ", ".join(sorted(name for name, _ in lock.environments())) or "none"
        message = f"Lock file {info.path} has no environment {wanted!r} (has: {names})."
        return replace(info, environment=wanted, problems=(Problem("lock-environment", message),))
    channels = tuple(dict.fromkeys(normalize_channel(str(c)) for c in env.channels()))
    # py-rattler 0.28 panics on a LockPlatform made by hand: use the lock's own objects.
    owned = env.platforms()
    platforms = tuple(sorted(p.name for p in owned))
    info = replace(
        info,
        environment=wanted if info.format == PIXI else None,
        channels=channels,
        platforms=platforms,
    )
    chosen = next((p for p in owned if info.platform in (p.name, str(p.subdir))), None)
    if chosen is None:
        return replace(info, problems=(_platform_problem(info, platforms),))
    packages: list[PackageRef] = []
    problems: list[Problem] = []
    for locked in env.packages(chosen) or []:
        try:
            packages.append(_locked_ref(locked))
        except BaseException as err:
            if not _rattler_failed(err):
                raise
            message = f"Lock file {info.path}: package {locked.name!r} cannot be read ({err}); it is ignored."
            problems.append(Problem("bad-lock-line", message, "warning"))
    if not channels:
        info = replace(info, channels=_channels_of(packages))
    return replace(info, packages=tuple(packages), problems=tuple(problems))


def _locked_ref(locked: Any) -> PackageRef:
    if isinstance(locked, CondaLockedBinaryPackage):
        return package_ref(locked.repo_data_record())
    if isinstance(locked, PypiLockedPackage):
        return PackageRef(
            name=locked.name,
            version=str(locked.version),
            kind=PYPI,
            url=str(locked.location),
            sha256=_locked_hash(locked, "sha256"),
            md5=_locked_hash(locked, "md5"),
        )
    # A pixi source package (built from a path or git checkout): pinned by location, not by artifact.
    record = locked.package_record
    return PackageRef(
        name=record.name.source,
        version=str(record.version),
        build=str(record.build),
        subdir=str(record.subdir),
        url=str(locked.location),
        extra={"source": True},
    )


def _locked_hash(locked: Any, kind: str) -> str:
    # py-rattler 0.28: a PyPI entry without hashes still has a PackageHashes, whose properties then
    # raise AttributeError ('NoneType' object has no attribute 'md5').
    try:
        digest = getattr(locked.hashes, kind) if locked.hashes is not None else None
    except AttributeError:
        return ""
    return _hex(digest)


def write_lock(
    packages: Sequence[PackageRef],
    fmt: str,
    path: Path | str,
    platform: str = "linux-64",
    channels: Sequence[str] | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
) -> LockInfo:
    """Write ``packages`` as a lock file of format ``fmt``; return it as read back, with what was left out."""
    # What a format cannot hold (PyPI packages in an explicit file, a package without a URL, or
    # without a hash where the format needs one) is left out and named in the returned problems.
    # Explicit files carry one hash per package: the sha256 when known, else the md5.
    if fmt not in LOCK_FORMATS:
        raise ValueError(f"unknown lock format {fmt!r}; use one of {', '.join(LOCK_FORMATS)}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(2, f"Cannot write the lock file {target}: no directory {target.parent}")
    chosen = tuple(channels) if channels is not None else _channels_of(packages)
    left_out: list[Problem] = []
    if fmt == EXPLICIT:
        text = _render_explicit(packages, platform, left_out)
        _atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    elif fmt == CONDA_LOCK:
        text = _render_conda_lock(packages, platform, chosen, left_out)
        _atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    else:
        lock = _build_pixi_lock(packages, platform, chosen, environment, left_out)
        _atomic_write(target, lambda tmp: lock.to_path(tmp))
    info = read_lock(target, platform, environment)
    return replace(info, problems=(*left_out, *info.problems))


def _channels_of(packages: Iterable[PackageRef]) -> tuple[str, ...]:
    """The channels of the conda packages among ``packages``, in order of first appearance."""
    return tuple(dict.fromkeys(p.channel for p in packages if p.kind == CONDA and p.channel))


def _channel_url(channel: str) -> str:
    """A channel as a URL where one is known: short names (``conda-forge``) expand against the
    site's channel alias (``CONDA_CHANNEL_ALIAS``, as conda reads it); without one they stay short."""
    if "://" in channel:
        return channel
    alias = channel_alias()
    return f"{alias}/{channel}" if alias else channel


def _lock_channel(channel: str) -> str:
    url = _channel_url(channel)
    return url.rstrip("/") + "/" if "://" in url else url


def _artifact_url(ref: PackageRef) -> str | None:
    if ref.url:
        return ref.url
    if ref.kind != CONDA or not (ref.channel and ref.subdir and ref.build):
        return None
    if "://" not in _channel_url(ref.channel):
        return None  # a short channel name and no alias: the download URL is not known
    return f"{_channel_url(ref.channel)}/{ref.subdir}/{ref.name}-{ref.version}-{ref.build}.conda"


def _left_out(ref: PackageRef, why: str) -> Problem:
    return Problem("lock-left-out", f"{ref.dist} is not in the lock file: {why}.", "warning")


def _render_explicit(packages: Sequence[PackageRef], platform: str, left_out: list[Problem]) -> str:
    lines = [
        "# This file may be used to create an environment using:",
        "# $ conda create --prefix <prefix> --file <this file>",
        f"# platform: {platform}",
        f"# created-by: jupyter-envshare {__version__}",
        "@EXPLICIT",
    ]
    for ref in packages:
        url = _artifact_url(ref)
        if ref.kind != CONDA:
            left_out.append(_left_out(ref, "explicit files list conda packages only"))
        elif url is None:
            left_out.append(_left_out(ref, "its download URL is unknown"))
        elif ref.sha256:
            lines.append(f"{url}#sha256:{ref.sha256}")
        elif ref.md5:
            lines.append(f"{url}#{ref.md5}")
        else:
            lines.append(url)
    return "\n".join(lines) + "\n"


def _dependency_map(depends: Iterable[str]) -> dict[str, str]:
    # conda-lock v1 keeps dependencies as {name: version constraint}.
    mapped: dict[str, str] = {}
    for dep in depends:
        name, _, constraint = str(dep).strip().partition(" ")
        if name:
            mapped[name] = constraint.strip()
    return mapped


def _render_conda_lock(
    packages: Sequence[PackageRef], platform: str, channels: Sequence[str], left_out: list[Problem]
) -> str:
    entries: list[dict[str, Any]] = []
    for ref in packages:
        url = _artifact_url(ref)
        hashes = {k: v for k, v in (("md5", ref.md5), ("sha256", ref.sha256)) if v}
        if url is None:
            left_out.append(_left_out(ref, "its download URL is unknown"))
            continue
        if not hashes:
            left_out.append(_left_out(ref, "conda-lock v1 needs an md5 or sha256 and none is known"))
            continue
        entries.append(
            {
                "name": ref.name,
                "version": ref.version,
                "manager": "conda" if ref.kind == CONDA else "pip",
                "platform": platform,
                "dependencies": _dependency_map(ref.extra.get("depends", ())),
                "url": url,
                "hash": hashes,
                "category": "main",
                "optional": False,
            }
        )
    listing = "\n".join(f"{e['manager']} {e['url']}" for e in entries)
    doc = {
        "version": 1,
        "metadata": {
            # conda-lock hashes its inputs here; there are none, so this is a hash of the contents.
            "content_hash": {platform: hashlib.sha256(listing.encode()).hexdigest()},
            "channels": [{"url": c, "used_env_vars": []} for c in channels],
            "platforms": [platform],
            "sources": [f"jupyter-envshare {__version__}"],
        },
        "package": entries,
    }
    return str(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def _build_number(ref: PackageRef) -> int:
    number = ref.extra.get("build_number")
    if isinstance(number, int):
        return number
    match = _BUILD_NUMBER.search(ref.build)
    return int(match.group(1)) if match else 0


def _repodata_record(ref: PackageRef, url: str) -> Any:
    noarch = ref.extra.get("noarch")
    record = PackageRecord(
        ref.name,
        ref.version,
        BuildString.new_unchecked(ref.build),  # legacy builds need not follow CEP 26
        _build_number(ref),
        ref.subdir or "noarch",
        noarch=NoArchType(noarch) if noarch in ("generic", "python") else None,
        depends=[str(d) for d in ref.extra.get("depends", ())],
        constrains=[str(c) for c in ref.extra.get("constrains", ())],
        md5=bytes.fromhex(ref.md5) if ref.md5 else None,
        sha256=bytes.fromhex(ref.sha256) if ref.sha256 else None,
        size=ref.extra.get("size") if isinstance(ref.extra.get("size"), int) else None,
        license=ref.extra.get("license") if isinstance(ref.extra.get("license"), str) else None,
    )
    channel = _channel_url(ref.channel) + "/" if ref.channel else url.rsplit("/", 2)[0] + "/"
    return RepoDataRecord(record, url.rsplit("/", 1)[-1], url, channel)


def _build_pixi_lock(
    packages: Sequence[PackageRef],
    platform: str,
    channels: Sequence[str],
    environment: str,
    left_out: list[Problem],
) -> Any:
    lock = LockFile([LockPlatform(platform)])
    owned = lock.platforms()[0]  # a hand-made LockPlatform panics in later calls (py-rattler 0.28)
    lock.set_channels(environment, [LockChannel(_lock_channel(c)) for c in channels])
    for ref in packages:
        url = _artifact_url(ref)
        if url is None:
            left_out.append(_left_out(ref, "its download URL is unknown"))
        elif ref.kind == CONDA:
            lock.add_conda_package(environment, owned, _repodata_record(ref, url))
        else:
            lock.add_pypi_package(environment, owned, ref.name, ref.version, url)
            if ref.sha256:
                why = f"py-rattler 0.28 cannot write the sha256 of PyPI packages; {ref.name} is locked by URL"
                left_out.append(Problem("lock-left-out", why, "warning"))
    return lock
