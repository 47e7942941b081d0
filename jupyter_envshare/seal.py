"""Sealing a shared environment so conda and pip refuse to change it outside notebooks too.

Two standard markers: CEP 22's ``conda-meta/frozen`` (conda >= 25.5 refuses to modify a frozen
environment and shows its message) and PEP 668's ``EXTERNALLY-MANAGED`` in the interpreter's stdlib
directory (pip refuses to install into it and shows our message). Terminals and batch jobs are
covered, where the in-kernel guard never runs.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .config import user_name

FROZEN = Path("conda-meta") / "frozen"
EXTERNALLY_MANAGED = "EXTERNALLY-MANAGED"

DEFAULT_MESSAGE = (
    "{env} is a shared, read-only environment managed by {contact}. It changes only through its "
    "spec, for everybody at once: request a package from the Shared environments panel in "
    "JupyterLab (or `%envshare request SPEC --reason ...` in a notebook). For something you need "
    "now, create a personal environment: conda create -p ~/envs/mine python SPEC"
)


@dataclass(frozen=True)
class SealReport:
    """Seal markers present on an environment, and who besides its owner can write to it."""

    prefix: str
    owner: str
    frozen: bool
    externally_managed: tuple[str, ...]
    writable_by_others: tuple[str, ...] = field(default=())

    @property
    def sealed(self) -> bool:
        """Whether conda's marker is present and pip's is in every interpreter of the env."""
        return self.frozen and bool(self.externally_managed)

    def as_json(self) -> dict[str, object]:
        """The report as the CLI prints it with ``--json``."""
        return {
            "prefix": self.prefix,
            "owner": self.owner,
            "sealed": self.sealed,
            "frozen": self.frozen,
            "externally_managed": list(self.externally_managed),
            "writable_by_others": list(self.writable_by_others),
        }


def stdlib_dirs(prefix: Path) -> list[Path]:
    """The ``lib/pythonX.Y`` directories of the environment's interpreters."""
    return sorted(p for p in prefix.glob("lib/python3.*") if p.is_dir() and not p.is_symlink())


def seal_message(env: str, contact: str, template: str | None = None) -> str:
    """The message conda and pip show when they refuse."""
    return (template or DEFAULT_MESSAGE).format(env=env, contact=contact)


def seal(prefix: Path, message: str) -> SealReport:
    """Write both markers (replacing older ones); raises OSError if the prefix is not writable."""
    _write(prefix / FROZEN, json.dumps({"message": message}, indent=1) + "\n")
    body = "\n".join("  " + line if i else line for i, line in enumerate(_wrap(message)))
    for directory in stdlib_dirs(prefix):
        _write(directory / EXTERNALLY_MANAGED, f"[externally-managed]\nError={body}\n")
    return inspect(prefix)


def unseal(prefix: Path) -> SealReport:
    """Remove both markers."""
    (prefix / FROZEN).unlink(missing_ok=True)
    for directory in stdlib_dirs(prefix):
        (directory / EXTERNALLY_MANAGED).unlink(missing_ok=True)
    return inspect(prefix)


def inspect(prefix: Path) -> SealReport:
    """What seals the environment has, and which of its directories others may write to."""
    try:
        owner = user_name(prefix.stat().st_uid)
    except OSError:
        owner = "?"
    watched = [prefix, prefix / "conda-meta", prefix / "bin"]
    for directory in stdlib_dirs(prefix):
        watched.append(directory / "site-packages")
    loose: list[str] = []
    for path in watched:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        who = [name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if mode & bit]
        if who:
            loose.append(f"{path} is writable by {' and '.join(who)}")
    return SealReport(
        prefix=str(prefix),
        owner=owner,
        frozen=(prefix / FROZEN).is_file(),
        externally_managed=tuple(
            str(d / EXTERNALLY_MANAGED) for d in stdlib_dirs(prefix) if (d / EXTERNALLY_MANAGED).is_file()
        ),
        writable_by_others=tuple(loose),
    )


def _wrap(text: str, width: int = 78) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines or [""]


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)
