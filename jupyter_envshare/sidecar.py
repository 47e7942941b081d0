"""The sidecar: the provenance an admin stamps into ``conda-meta/envshare`` (or the catalog).

``stamp`` hashes an environment's spec and lock, notes the git commit of the spec, who built the
environment with which tool, and when, and writes it all atomically; ``read_sidecar`` reads it back,
naming every field it cannot use instead of raising. Git metadata is read from the ``.git`` files; no
process is ever spawned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import user_name
from .discovery import SIDECAR_NAME, Problem
from .history import UNKNOWN_TOOL, read_history, read_pixi_marker
from .lockfiles import LOCK_FORMATS, PIXI, _atomic_write, detect_lock_format

__all__ = [
    "Builder",
    "GitInfo",
    "Sidecar",
    "merge_sidecars",
    "read_git",
    "read_sidecar",
    "sidecar_from_catalog",
    "sidecar_from_mapping",
    "sidecar_path",
    "stamp",
    "write_sidecar",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_SIDECAR_STRINGS = ("spec_path", "spec_sha256", "lock_path", "lock_sha256", "lock_format", "lock_environment")
_SIDECAR_FIELDS = (*_SIDECAR_STRINGS, "git", "builder", "built_at")
_CATALOG_ALIASES = {"spec": "spec_path", "lock": "lock_path"}


@dataclass(frozen=True)
class GitInfo:
    """The repository a spec was committed to: remote URL (no credentials) and HEAD commit."""

    remote_url: str = ""
    sha: str = ""


@dataclass(frozen=True)
class Builder:
    """Who built an environment, where, and with which tool."""

    user: str = ""
    host: str = ""
    tool: str = ""
    tool_version: str = ""


@dataclass(frozen=True)
class Sidecar:
    """The provenance an admin stamped into ``conda-meta/envshare`` (or the catalog) at build time."""

    spec_path: str | None = None
    spec_sha256: str | None = None
    lock_path: str | None = None
    lock_sha256: str | None = None
    lock_format: str | None = None
    git: GitInfo | None = None
    builder: Builder | None = None
    built_at: datetime | None = None
    lock_environment: str | None = None  # the environment of a pixi lock, when not "default"
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of this sidecar (absent fields left out, unknown keys kept)."""
        doc: dict[str, Any] = dict(self.extra)
        for key in _SIDECAR_STRINGS:
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        if self.git is not None:
            doc["git"] = asdict(self.git)
        if self.builder is not None:
            doc["builder"] = asdict(self.builder)
        if self.built_at is not None:
            doc["built_at"] = _iso(self.built_at)
        return doc


def _iso(when: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, as the sidecar stores times."""
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _read_failure(err: OSError, what: str, path: Path | str) -> OSError:
    """The same kind of OSError, saying which file could not be read and why."""
    return type(err)(err.errno, f"Cannot read the {what} {path}: {err.strerror or err}")


def _hash_file(path: Path, what: str) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _read_failure(err, what, path) from err
    return data, hashlib.sha256(data).hexdigest()


def _bad_sidecar(message: str) -> Problem:
    return Problem("bad-sidecar", message, "warning")


def _field_names(record: type[GitInfo | Builder]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclass_fields(record))


def _str_fields(
    data: Mapping[str, Any], keys: Sequence[str], label: str, problems: list[Problem]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            values[key] = value
        else:
            problems.append(_bad_sidecar(f"{label}: '{key}' must be a string, not {value!r}; ignored."))
    return values


def sidecar_from_mapping(
    data: Mapping[str, Any], where: str = "sidecar"
) -> tuple[Sidecar, tuple[Problem, ...]]:
    """A ``Sidecar`` from its JSON document (or a catalog entry), with fields of the wrong type named."""
    problems: list[Problem] = []
    strings = _str_fields(data, _SIDECAR_STRINGS, where, problems)
    fmt = strings.get("lock_format")
    if fmt is not None and fmt not in LOCK_FORMATS:
        message = f"{where}: unknown lock_format {fmt!r} (known: {', '.join(LOCK_FORMATS)}); ignored."
        problems.append(_bad_sidecar(message))
        del strings["lock_format"]
    git: GitInfo | None = None
    builder: Builder | None = None
    raw_git, raw_builder = data.get("git"), data.get("builder")
    if isinstance(raw_git, Mapping):
        git = GitInfo(**_str_fields(raw_git, _field_names(GitInfo), f"{where} git", problems))
    elif raw_git is not None:
        problems.append(_bad_sidecar(f"{where}: 'git' must be an object; ignored."))
    if isinstance(raw_builder, Mapping):
        builder = Builder(**_str_fields(raw_builder, _field_names(Builder), f"{where} builder", problems))
    elif raw_builder is not None:
        problems.append(_bad_sidecar(f"{where}: 'builder' must be an object; ignored."))
    built_at: datetime | None = None
    raw_time = data.get("built_at")
    if raw_time is not None:
        built_at = _parse_iso(raw_time) if isinstance(raw_time, str) else None
        if built_at is None:
            message = f"{where}: built_at {raw_time!r} is not an ISO 8601 time; ignored."
            problems.append(_bad_sidecar(message))
    extra = {k: v for k, v in data.items() if k not in _SIDECAR_FIELDS}
    sidecar = Sidecar(
        spec_path=strings.get("spec_path"),
        spec_sha256=strings.get("spec_sha256"),
        lock_path=strings.get("lock_path"),
        lock_sha256=strings.get("lock_sha256"),
        lock_format=strings.get("lock_format"),
        lock_environment=strings.get("lock_environment"),
        git=git,
        builder=builder,
        built_at=built_at,
        extra=extra,
    )
    return sidecar, tuple(problems)


def merge_sidecars(first: Sidecar, second: Sidecar) -> Sidecar:
    """``first``'s fields, with the gaps filled from ``second``."""
    values = {
        key: getattr(first, key) if getattr(first, key) is not None else getattr(second, key)
        for key in _SIDECAR_FIELDS
    }
    return Sidecar(**values, extra={**second.extra, **first.extra})


def sidecar_from_catalog(catalog: Mapping[str, Any]) -> tuple[Sidecar | None, tuple[Problem, ...]]:
    """The sidecar fields of a catalog entry (``spec``/``lock`` for short), ``None`` when it has none."""
    fields = {_CATALOG_ALIASES.get(k, k): v for k, v in catalog.items()}
    fields = {k: v for k, v in fields.items() if k in _SIDECAR_FIELDS}
    if not fields:
        return None, ()
    name = catalog.get("name") or catalog.get("prefix") or "?"
    return sidecar_from_mapping(fields, f"catalog entry {name}")


def sidecar_path(prefix: Path | str) -> Path:
    """Where the sidecar of ``prefix`` lives: ``conda-meta/envshare``, no ``.json`` suffix."""
    return Path(prefix) / "conda-meta" / SIDECAR_NAME


def read_sidecar(prefix: Path | str) -> tuple[Sidecar | None, tuple[Problem, ...]]:
    """The sidecar of ``prefix`` (``None`` when there is none), and what is wrong with it."""
    path = sidecar_path(prefix)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, ()
    except OSError as err:
        return None, (_bad_sidecar(f"{path} cannot be read: {err.strerror or err}."),)
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        return None, (_bad_sidecar(f"{path} is not JSON text; stamp the environment again."),)
    except json.JSONDecodeError as err:
        message = (
            f"{path} is not JSON ({err.msg}: line {err.lineno}, column {err.colno}); "
            "stamp the environment again (jupyter envshare stamp)."
        )
        return None, (_bad_sidecar(message),)
    if not isinstance(data, dict):
        return None, (_bad_sidecar(f"{path} is not a JSON object."),)
    return sidecar_from_mapping(data, str(path))


def _check_sidecar(sidecar: Sidecar) -> None:
    for key in ("spec_sha256", "lock_sha256"):
        value = getattr(sidecar, key)
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError(f"{key} must be 64 lower-case hex digits, not {value!r}")
    if sidecar.lock_format is not None and sidecar.lock_format not in LOCK_FORMATS:
        raise ValueError(f"lock_format must be one of {', '.join(LOCK_FORMATS)}, not {sidecar.lock_format!r}")
    if sidecar.built_at is not None and sidecar.built_at.tzinfo is None:
        raise ValueError("built_at must carry a time zone (use datetime.now(timezone.utc))")
    if sidecar.git is not None and sidecar.git.sha and not _GIT_SHA.fullmatch(sidecar.git.sha):
        raise ValueError(f"git sha must be a full hex commit id, not {sidecar.git.sha!r}")


def _require_conda_meta(prefix: Path | str) -> None:
    if not (Path(prefix) / "conda-meta").is_dir():
        raise FileNotFoundError(2, f"{prefix} is not a conda environment (it has no conda-meta directory)")


def write_sidecar(prefix: Path | str, sidecar: Sidecar) -> Path:
    """Write ``sidecar`` to ``prefix``'s ``conda-meta/envshare`` atomically (mode 0644); return its path."""
    _check_sidecar(sidecar)
    _require_conda_meta(prefix)
    text = json.dumps(sidecar.to_json(), indent=2, sort_keys=True) + "\n"
    path = sidecar_path(prefix)
    try:
        _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except PermissionError as err:
        # DESIGN: where the prefix is not writable, the catalog carries the same fields.
        raise PermissionError(
            err.errno, f"Cannot write {path}: {err.strerror}; put these fields in the catalog entry instead"
        ) from err
    return path


def _sidecar_location(prefix: Path, path: Path) -> str:
    """Inside the prefix, relative (it moves with the env); elsewhere, absolute."""
    absolute = path.expanduser().absolute()
    try:
        return str(absolute.relative_to(prefix.absolute()))
    except ValueError:
        return str(absolute)


def stamp(
    prefix: Path | str,
    spec: Path | str | None = None,
    lock: Path | str | None = None,
    *,
    git: bool = False,
    tool: str | None = None,
    tool_version: str | None = None,
    lock_environment: str | None = None,
    built_at: datetime | None = None,
) -> Sidecar:
    """Hash spec and lock, note git commit, builder and time, and write them to ``prefix``'s sidecar."""
    # `tool` defaults to what the environment's history (or pixi marker) says. Raises OSError when a
    # file cannot be read or written and ValueError on unusable input.
    root = Path(prefix)
    _require_conda_meta(root)
    fields: dict[str, Any] = {}
    if spec is not None:
        spec_file = Path(spec)
        _, fields["spec_sha256"] = _hash_file(spec_file, "spec file")
        fields["spec_path"] = _sidecar_location(root, spec_file)
    if lock is not None:
        lock_file = Path(lock)
        data, fields["lock_sha256"] = _hash_file(lock_file, "lock file")
        fmt = detect_lock_format(data.decode("utf-8-sig", errors="replace"))
        if not fmt:
            known = "explicit, conda-lock v1, pixi.lock"
            raise ValueError(f"{lock_file} is in no lock format jupyter-envshare reads ({known})")
        fields["lock_format"] = fmt
        fields["lock_path"] = _sidecar_location(root, lock_file)
    if git:
        if spec is None:
            raise ValueError("git=True records the commit of the spec: give a spec file")
        fields["git"] = read_git(spec)
    if tool is None:
        tool, inferred_version = _tool_of_env(root)
        tool_version = tool_version if tool_version is not None else inferred_version
    builder = Builder(
        user=user_name(os.geteuid()),
        host=socket.gethostname(),
        tool=tool,
        tool_version=tool_version or "",
    )
    when = built_at if built_at is not None else datetime.now(timezone.utc).replace(microsecond=0)
    sidecar = Sidecar(builder=builder, built_at=when, lock_environment=lock_environment, **fields)
    write_sidecar(root, sidecar)
    return sidecar


def _tool_of_env(prefix: Path) -> tuple[str, str]:
    history, _ = read_history(prefix)
    known = [t for t in history if t.tool != UNKNOWN_TOOL]
    if known:
        return known[-1].tool, known[-1].tool_version
    marker, _ = read_pixi_marker(prefix)
    if marker is not None:
        return PIXI, marker.pixi_version
    return "", ""


# ---------------------------------------------------------------------------------------------
# git, read from the repository's files
# ---------------------------------------------------------------------------------------------


def _find_git_dir(start: Path) -> tuple[Path, Path]:
    """``(worktree root, git dir)`` of the repository containing ``start``."""
    for directory in (start, *start.parents):
        dot = directory / ".git"
        if dot.is_dir():
            return directory, dot
        if dot.is_file():
            # worktrees and submodules: a file saying `gitdir: <path>`
            match = re.match(r"gitdir:\s*(.+)", dot.read_text(encoding="utf-8").strip())
            if match:
                return directory, (directory / match.group(1).strip()).resolve()
    raise ValueError(f"{start} is not inside a git repository")


def _packed_ref(common: Path, ref: str) -> str | None:
    try:
        text = (common / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith(("#", "^")):
            continue
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha.strip()
    return None


def _resolve_ref(git_dir: Path, common: Path, ref: str) -> str | None:
    for _ in range(10):  # symbolic refs may point at symbolic refs
        value: str | None = None
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8").strip()
                break
        if value is None:
            return _packed_ref(common, ref)
        if not value.startswith("ref:"):
            return value
        ref = value[4:].strip()
    return None


def _git_remotes(config: Path) -> dict[str, str]:
    remotes: dict[str, str] = {}
    current: str | None = None
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return remotes
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = re.match(r'^\[\s*remote\s+"(.*)"\s*\]', line)
            current = section.group(1) if section else None
            continue
        key, sep, value = line.partition("=")
        if current is not None and sep and key.strip().lower() == "url":
            remotes.setdefault(current, value.strip().strip('"'))
    return remotes


def _without_credentials(url: str) -> str:
    """A remote URL safe to record: ``https://user:token@host/x`` becomes ``https://host/x``."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc or parts.scheme in ("ssh", "git+ssh"):
        return url  # scp-like `git@host:org/repo` and ssh URLs name an account, not a secret
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def read_git(path: Path | str) -> GitInfo:
    """Remote URL (``origin`` first) and HEAD commit of the git repository containing ``path``."""
    # Read from .git (HEAD, refs, packed-refs, config, worktree links) without running git; raises
    # ValueError outside a repository or before its first commit.
    start = Path(path).absolute()
    if not start.is_dir():
        start = start.parent
    _, git_dir = _find_git_dir(start)
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if head.startswith("ref:"):
        ref = head[4:].strip()
        sha = _resolve_ref(git_dir, common, ref)
        if sha is None:
            raise ValueError(f"the git repository {git_dir} has no commit on {ref} yet")
    else:
        sha = head
    if not _GIT_SHA.fullmatch(sha):
        raise ValueError(f"the git repository {git_dir} has an unreadable HEAD ({sha[:60]!r})")
    remotes = _git_remotes(common / "config")
    remote = remotes.get("origin") or next(iter(remotes.values()), "")
    return GitInfo(remote_url=_without_credentials(remote), sha=sha)
