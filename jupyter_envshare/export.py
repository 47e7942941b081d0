"""Exporting a shared installation for re-creation elsewhere: a spec per environment and an inventory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .packages import CONDA, PYPI, PackageRef

INVENTORY = "inventory.json"


@dataclass(frozen=True)
class ExportedEnv:
    """One environment as exported: its spec file and what the inventory says of it."""

    name: str
    spec_file: str
    entry: dict[str, Any]


def environment_yml(
    name: str, packages: Sequence[PackageRef], channels: Sequence[str], builds: bool = True
) -> str:
    """An environment.yml that re-creates ``packages`` (exact versions; builds unless told not to)."""
    conda = sorted((p for p in packages if p.kind == CONDA), key=lambda p: p.name.lower())
    pypi = sorted((p for p in packages if p.kind == PYPI), key=lambda p: p.name.lower())
    dependencies: list[Any] = [
        f"{p.name}={p.version}={p.build}" if builds and p.build else f"{p.name}={p.version}" for p in conda
    ]
    if pypi:
        if not any(p.name == "pip" for p in conda):
            dependencies.append("pip")
        dependencies.append({"pip": [f"{p.name}=={p.version}" for p in pypi]})
    doc = {"name": name, "channels": list(channels) or ["defaults"], "dependencies": dependencies}
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def write_export(
    directory: Path,
    envs: Sequence[tuple[str, Sequence[PackageRef], Sequence[str], dict[str, Any]]],
    builds: bool = True,
    platform: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[ExportedEnv]:
    """Write ``<env>.environment.yml`` for each (name, packages, channels, facts) and ``inventory.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    exported: list[ExportedEnv] = []
    for name, packages, channels, facts in envs:
        if progress is not None:
            progress(name)
        spec_file = f"{name}.environment.yml"
        _write(directory / spec_file, environment_yml(name, packages, channels, builds))
        entry = {"name": name, "spec": spec_file, "package_count": len(packages), **facts}
        exported.append(ExportedEnv(name, spec_file, entry))
    inventory = {
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform,
        "builds": builds,
        "environments": [e.entry for e in exported],
    }
    _write(directory / INVENTORY, json.dumps(inventory, indent=2) + "\n")
    return exported


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
