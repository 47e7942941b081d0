"""The spec an environment was built from (``environment.yml``, ``pixi.toml``, ...), as it is on disk now.

Reading never raises: a missing or unparsable spec becomes a ``Problem``, and its hash is kept whenever
its bytes could be read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .discovery import Problem
from .lockfiles import _yaml_error_detail

__all__ = ["SpecInfo", "read_spec"]

_SPEC_TEXT_LIMIT = 1 << 20  # environment.yml files are small; a huge one is kept as a hash only


@dataclass(frozen=True)
class SpecInfo:
    """The spec an environment was built from (``environment.yml``), as it is on disk now."""

    path: str
    sha256: str = ""
    text: str | None = None
    name: str | None = None
    channels: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    mtime: float | None = None
    problems: tuple[Problem, ...] = ()


def read_spec(path: Path | str) -> SpecInfo:
    """An ``environment.yml`` (or other spec file) as it is now: hash, text and, for YAML, its contents."""
    where = os.fspath(path)
    try:
        data = Path(where).read_bytes()
        mtime = Path(where).stat().st_mtime
    except OSError as err:
        message = f"The spec {where} cannot be read: {err.strerror or err}."
        return SpecInfo(where, problems=(Problem("spec-missing", message, "warning"),))
    info = SpecInfo(where, sha256=hashlib.sha256(data).hexdigest(), mtime=mtime)
    if len(data) > _SPEC_TEXT_LIMIT:
        return info
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _bad_spec(info, f"The spec {where} is not UTF-8 text.")
    info = replace(info, text=text)
    if not where.endswith((".yml", ".yaml")):
        return info  # pixi.toml, pyproject.toml, requirements files: kept as text and hash
    return _parse_environment_yml(info, text)


def _parse_environment_yml(info: SpecInfo, text: str) -> SpecInfo:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return _bad_spec(info, f"The spec {info.path} is not valid YAML{_yaml_error_detail(err)}.")
    if not isinstance(doc, dict):
        return _bad_spec(info, f"The spec {info.path} is not an environment.yml mapping.")
    channels = doc.get("channels") or []
    deps = doc.get("dependencies") or []
    conda: list[str] = []
    pip: list[str] = []
    if isinstance(deps, list):
        for dep in deps:
            if isinstance(dep, str | int | float):
                conda.append(str(dep))
            elif isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                pip.extend(str(p) for p in dep["pip"])
    name = doc.get("name")
    return replace(
        info,
        name=str(name) if name is not None else None,
        channels=tuple(str(c) for c in channels) if isinstance(channels, list) else (),
        dependencies=tuple(conda),
        pip=tuple(pip),
    )


def _bad_spec(info: SpecInfo, message: str) -> SpecInfo:
    return replace(info, problems=(Problem("bad-spec", message, "warning"),))
