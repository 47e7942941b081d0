"""What conda-meta says about how an environment was built: ``history`` blocks and pixi's marker.

Reading never raises on bad input: unreadable history lines become ``Problem`` records that say where
they are, and every block that could be read is kept.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .discovery import Problem
from .lockfiles import _shown

__all__ = [
    "HISTORY_TOOLS",
    "UNKNOWN_TOOL",
    "PixiMarker",
    "Transaction",
    "history_tool",
    "parse_history",
    "read_history",
    "read_pixi_marker",
]

HISTORY_TOOLS = ("conda", "mamba", "micromamba", "pixi")
UNKNOWN_TOOL = "unknown"

_HISTORY_TIME = "%Y-%m-%d %H:%M:%S"
_HEADER = re.compile(r"^==>\s*(.*?)\s*<==$")
_COMMENT = re.compile(r"^#\s*([A-Za-z][\w .-]*?)\s*:\s?(.*)$")
# `channel::name-version-build`, where channel may be `conda-forge/linux-64` or a full URL; very old
# conda wrote bare `name-version-build`. Versions and builds contain no '-'.
_DIST = re.compile(r"^(?:\S+::)?[^\s:/]+-[^\s:/-]+-[^\s:/-]+$")


@dataclass(frozen=True)
class Transaction:
    """One ``==> date <==`` block of ``conda-meta/history``: what changed, when, with which tool."""

    date: datetime | None  # as written: local time, no zone
    command: str = ""
    tool: str = UNKNOWN_TOOL  # conda | mamba | micromamba | pixi | unknown
    tool_version: str = ""
    added: tuple[str, ...] = ()  # `channel::name-version-build`, as written
    removed: tuple[str, ...] = ()
    update_specs: tuple[str, ...] = ()
    remove_specs: tuple[str, ...] = ()
    neutered_specs: tuple[str, ...] = ()
    conda_version: str = ""  # the `# conda version:` line (libmamba writes a fixed 3.8.0 there)
    line: int = 0


@dataclass(frozen=True)
class PixiMarker:
    """What pixi leaves in ``conda-meta/pixi``: the manifest and lock an environment was installed from."""

    manifest_path: str = ""
    environment_name: str = ""
    pixi_version: str = ""
    lock_file_hash: str = ""
    platform: str = ""
    mtime: float | None = None


@dataclass
class _Block:
    line: int
    date: datetime | None
    command: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    specs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def transaction(self) -> Transaction:
        tool = history_tool(self.command)
        # Every tool writes `# conda version:`. Only conda writes its own there: mamba 1.x (through
        # conda's History class) writes conda's, libmamba (mamba 2, micromamba) a fixed "3.8.0". A
        # `# <tool> version:` line, should a tool write one, is taken at its word.
        tool_version = self.versions.get(tool, "")
        return Transaction(
            date=self.date,
            command=self.command,
            tool=tool,
            tool_version=tool_version,
            added=tuple(self.added),
            removed=tuple(self.removed),
            update_specs=self.specs.get("update", ()),
            remove_specs=self.specs.get("remove", ()),
            neutered_specs=self.specs.get("neutered", ()),
            conda_version=self.versions.get("conda", ""),
            line=self.line,
        )


_SPEC_ACTIONS = {
    "update": "update",
    "install": "update",
    "create": "update",
    "remove": "remove",
    "uninstall": "remove",
    "neutered": "neutered",
}


def history_tool(command: str) -> str:
    """The tool that ran a history block's ``# cmd:`` (its program name, even as a full path)."""
    for word in command.split()[:3]:
        base = word.replace("\\", "/").rsplit("/", 1)[-1].lower()
        base = re.sub(r"(\.exe|-script\.py)$", "", base)
        if base in HISTORY_TOOLS:
            return base
        if base == "conda-env" or ("conda_env" in word and base == "main.py"):
            return "conda"
    return UNKNOWN_TOOL


def _history_date(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, _HISTORY_TIME)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _spec_list(value: str) -> tuple[str, ...] | None:
    value = value.strip()
    if not value:
        return ()
    if not value.startswith("["):
        # conda before 4.4 wrote a bare comma-separated list
        return tuple(s.strip() for s in value.split(",") if s.strip())
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(parsed, list | tuple) and all(isinstance(s, str) for s in parsed):
        return tuple(parsed)
    return None


class _BadLines:
    """Runs of unreadable history lines, reported once per run instead of once per line."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[Problem] = []
        self._run: tuple[int, int, str, str] | None = None

    def add(self, number: int, line: str, reason: str) -> None:
        run = self._run
        if run is not None and run[1] == number - 1 and run[3] == reason:
            self._run = (run[0], number, run[2], reason)
            return
        self.flush()
        self._run = (number, number, line, reason)

    def flush(self) -> None:
        if self._run is None:
            return
        first, last, line, reason = self._run
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        message = f"{self.where}, {lines}: {reason} (first: {_shown(line)}); ignored."
        self.problems.append(Problem("bad-history", message, "warning"))
        self._run = None


def parse_history(
    text: str, where: str = "conda-meta/history"
) -> tuple[tuple[Transaction, ...], tuple[Problem, ...]]:
    """Transactions of a ``conda-meta/history`` (conda, mamba, micromamba), and what could not be read."""
    blocks: list[_Block] = []
    bad = _BadLines(where)
    current: _Block | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.match(line)
        if header:
            date = _history_date(header.group(1))
            if date is None:
                bad.add(number, line, "block date is not YYYY-MM-DD HH:MM:SS; the block is kept undated")
            current = _Block(number, date)
            blocks.append(current)
            continue
        if current is None:
            bad.add(number, line, "text before the first '==> date <==' block")
            continue
        if line[0] in "+-":
            dist = line[1:].strip()
            if not _DIST.match(dist):
                bad.add(number, line, "not a channel::name-version-build package")
                continue
            (current.added if line[0] == "+" else current.removed).append(dist)
            continue
        if not line.startswith("#"):
            bad.add(number, line, "not conda history")
            continue
        comment = _COMMENT.match(line)
        if comment is None:
            continue  # a free comment: conda ignores it too
        key, value = comment.group(1).strip().lower(), comment.group(2).strip()
        if key == "cmd":
            current.command = value
        elif key.endswith(" version"):
            current.versions[key.removesuffix(" version").strip()] = value
        elif key.endswith(" specs"):
            action = _SPEC_ACTIONS.get(key.removesuffix(" specs").strip())
            specs = _spec_list(value)
            if specs is None:
                bad.add(number, line, "spec list is not a list of strings")
            elif action is not None:
                current.specs[action] = specs
    bad.flush()
    return tuple(b.transaction() for b in blocks), tuple(bad.problems)


def read_history(prefix: Path | str) -> tuple[tuple[Transaction, ...], tuple[Problem, ...]]:
    """The parsed ``conda-meta/history`` of ``prefix`` (nothing when it has none)."""
    path = Path(prefix) / "conda-meta" / "history"
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return (), ()
    except OSError as err:
        return (), (Problem("bad-history", f"{path} cannot be read: {err.strerror or err}.", "warning"),)
    return parse_history(text, str(path))


def first_history_date(prefix: Path | str, limit: int = 4096) -> datetime | None:
    """The date of the first ``==> date <==`` block of ``conda-meta/history`` (the environment's
    creation), read from the file's first ``limit`` bytes; None without one. Local time, as conda
    writes it."""
    path = Path(prefix) / "conda-meta" / "history"
    try:
        with path.open("rb") as handle:
            head = handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in head.splitlines():
        found = _HEADER.match(line.strip())
        if found:
            return _history_date(found.group(1))
    return None


def read_pixi_marker(prefix: Path | str) -> tuple[PixiMarker | None, tuple[Problem, ...]]:
    """The ``conda-meta/pixi`` file pixi writes into environments it installs (pixi keeps no history)."""
    path = Path(prefix) / "conda-meta" / "pixi"
    try:
        data = json.loads(path.read_bytes())
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None, ()
    except (OSError, ValueError) as err:
        return None, (Problem("bad-pixi-marker", f"{path} cannot be read: {err}.", "warning"),)
    if not isinstance(data, dict):
        return None, (Problem("bad-pixi-marker", f"{path} is not a JSON object.", "warning"),)
    resolved = data.get("resolved_platform")
    subdir = resolved.get("subdir", "") if isinstance(resolved, dict) else ""
    marker = PixiMarker(
        manifest_path=str(data.get("manifest_path") or ""),
        environment_name=str(data.get("environment_name") or ""),
        pixi_version=str(data.get("pixi_version") or ""),
        lock_file_hash=str(data.get("environment_lock_file_hash") or ""),
        platform=str(subdir or ""),
        mtime=mtime,
    )
    return marker, ()
