"""Kernelspecs for shared environments: the kernelspec manager and kernelspec files for other tools."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpec, KernelSpecManager, NoSuchKernel

from .config import EnvShare, envshare_settings
from .discovery import (
    EnvDiscovery,
    KernelEntry,
    SharedEnv,
    Snapshot,
    StatKey,
    discovery_for,
    stat_key,
)
from .status import STATUS_BOARD

PROVISIONER_NAME = "envshare-provisioner"
OWNER_MARKER = ".envshare-owned"  # in each kernelspec directory written by `kernels sync`

SpecDict = dict[str, Any]


def env_status(env: SharedEnv) -> str:
    """The status shown with an environment's kernels.

    What the drift engine last found (the server refreshes it in the background), else
    "unavailable" when it cannot be used, "unlocked" when no lock is known, and "unchecked" for a
    locked environment not compared yet (listing never parses records itself: it must stay cheap).
    """
    if not env.usable:
        return "unavailable"
    known = STATUS_BOARD.get(env.prefix)
    if known is not None:
        return known
    lock = (env.sidecar or {}).get("lock_path") or (env.catalog or {}).get("lock_path")
    return "unchecked" if lock else "unlocked"


def envshare_metadata(env: SharedEnv, raw_kernel: str) -> dict[str, Any]:
    """The ``metadata.envshare`` state tools and the launcher read."""
    sidecar = env.sidecar or {}
    catalog = env.catalog or {}
    return {
        "env": env.name,
        "kernel": raw_kernel,
        "prefix": env.prefix,
        "path": env.path,
        "status": env_status(env),
        "read_only": env.read_only,
        "lock_sha256": sidecar.get("lock_sha256") or catalog.get("lock_sha256"),
        "built_at": sidecar.get("built_at") or catalog.get("built_at"),
        "description": catalog.get("description"),
        "owner": catalog.get("owner"),
    }


def shared_kernelspec(env: SharedEnv, entry: KernelEntry) -> SpecDict:
    """The kernelspec of one shared kernel, launched through the envshare provisioner."""
    spec = dict(entry.spec)
    metadata = dict(spec.get("metadata") or {})
    metadata["kernel_provisioner"] = {
        "provisioner_name": PROVISIONER_NAME,
        "config": {"env": env.name, "kernel": entry.raw_name},
    }
    metadata["envshare"] = envshare_metadata(env, entry.raw_name)
    # nb_conda_kernels' keys, so tools written against it keep working.
    metadata["conda_env_name"] = env.name
    metadata["conda_env_path"] = env.prefix
    metadata["conda_language"] = entry.language
    metadata["conda_raw_kernel_name"] = entry.raw_name
    spec["metadata"] = metadata
    spec["display_name"] = entry.display_name
    spec.setdefault("language", entry.language)
    spec["argv"] = list(entry.spec["argv"])
    return spec


def fallback_kernelspec(env: SharedEnv, entry: KernelEntry, reason: str) -> SpecDict:
    """A kernelspec that starts the explanatory fallback kernel (the provisioner decides for real)."""
    spec = shared_kernelspec(env, entry)
    spec["argv"] = [sys.executable, "-m", "jupyter_envshare.fallback", "-f", "{connection_file}"]
    spec["display_name"] = f"{entry.display_name} (unavailable)"
    spec["metadata"]["envshare"]["unavailable_reason"] = reason
    return spec


class SharedSpecs:
    """Shared kernelspecs built from one discovery snapshot, rebuilt only when it changes."""

    def __init__(self, discovery: EnvDiscovery) -> None:
        self.discovery = discovery
        self._generation: tuple[int, int] = (-1, -1)
        self._specs: dict[str, tuple[str, SpecDict]] = {}
        self._prefixes: tuple[str, ...] = ()
        self._snapshot: Snapshot | None = None

    def current(self) -> tuple[Snapshot, dict[str, tuple[str, SpecDict]]]:
        """The snapshot and ``name -> (resource_dir, spec)`` for every usable shared kernel."""
        snap = self.discovery.snapshot()
        generation = (snap.generation, STATUS_BOARD.version)
        if generation != self._generation:
            specs: dict[str, tuple[str, SpecDict]] = {}
            for env in snap.envs:
                if env.usable:
                    for entry in env.kernels:
                        specs[entry.name] = (entry.resource_dir, shared_kernelspec(env, entry))
            self._specs = specs
            # Only environments that offer a kernel can stand in for a native spec pointing into them.
            self._prefixes = tuple(sorted({e.prefix + os.sep for e in snap.envs if e.usable and e.kernels}))
            self._generation = generation
            self._snapshot = snap
        return snap, self._specs

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Resolved prefixes of the usable environments with kernels, each ending with a separator."""
        return self._prefixes


class EnvShareKernelSpecManager(KernelSpecManager):
    """Native kernelspecs plus every allowed shared environment's kernels, fresh on each listing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.envshare: EnvShare = envshare_settings(self)
        self.shared = SharedSpecs(discovery_for(self.envshare.discovery_config()))
        self._native_key: tuple[StatKey, ...] | None = None
        self._native: dict[str, tuple[str, SpecDict, tuple[str, ...]]] = {}
        self._native_files: tuple[str, ...] = ()
        self._merged_key: tuple[int, int, int] | None = None
        self._merged: dict[str, tuple[str, SpecDict]] = {}
        self._all_specs: dict[str, dict[str, Any]] = {}
        self._native_version = 0
        self._seen: dict[str, tuple[SharedEnv, KernelEntry]] = {}

    # -- the KernelSpecManager interface ---------------------------------------------------------

    def find_kernel_specs(self) -> dict[str, str]:
        """Kernel name -> resource directory, native and shared."""
        return {name: rd for name, (rd, _) in self._merged_specs().items()}

    def get_all_specs(self) -> dict[str, Any]:
        """Kernel name -> ``{"resource_dir", "spec"}``, as jupyter_client's manager returns.

        The inner dicts are shared with the cache (building 300 copies per listing would cost more
        than the listing); callers such as jupyter_server's handler only read them.
        """
        self._merged_specs()
        return dict(self._all_specs)

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """The kernelspec called ``kernel_name``; a gone or broken shared one explains itself."""
        merged = self._merged_specs()
        key = kernel_name.lower()
        found = merged.get(kernel_name) or next((v for k, v in merged.items() if k.lower() == key), None)
        if found is not None:
            resource_dir, spec = found
            # A new object each time: the provisioner rewrites argv and env of the one it gets.
            kspec: KernelSpec = self.kernel_spec_class(resource_dir=resource_dir, **spec)
            return kspec
        unavailable = self._unavailable_spec(kernel_name)
        if unavailable is not None:
            return unavailable
        raise NoSuchKernel(kernel_name)

    # -- internals ---------------------------------------------------------------------------------

    def _merged_specs(self) -> dict[str, tuple[str, SpecDict]]:
        snap, shared = self.shared.current()
        self._refresh_native()
        merged_key = (snap.generation, STATUS_BOARD.version, self._native_version)
        if merged_key != self._merged_key:
            prefixes = self.shared.prefixes
            merged: dict[str, tuple[str, SpecDict]] = {}
            for name, (rd, spec, places) in self._native.items():
                if name in shared:
                    continue
                if name != NATIVE_KERNEL_NAME and any(p.startswith(prefixes) for p in places):
                    # A native spec that runs inside a shared env is that env's kernel, listed once
                    # (the server's own python3 always stays: it is the default kernel).
                    self.log.debug("[envshare] %s duplicates a shared kernel; hidden", name)
                    continue
                merged[name] = (rd, spec)
            merged.update(shared)
            for env in snap.envs:
                for entry in env.kernels:
                    self._seen[entry.name] = (env, entry)
            self._merged = merged
            self._all_specs = {
                name: {"resource_dir": rd, "spec": spec} for name, (rd, spec) in merged.items()
            }
            self._merged_key = merged_key
        return self._merged

    def _refresh_native(self) -> None:
        dirs = list(self.kernel_dirs)
        key = (
            *(stat_key(d) for d in dirs),
            *(stat_key(f) for f in self._native_files),
        )
        if key == self._native_key:
            return
        native: dict[str, tuple[str, SpecDict, tuple[str, ...]]] = {}
        files: list[str] = []
        for name, resource_dir in super().find_kernel_specs().items():
            files.append(os.path.join(resource_dir, "kernel.json"))
            try:
                spec = self._get_kernel_spec_by_name(name, resource_dir)
            except NoSuchKernel:
                continue
            except Exception:
                self.log.warning("Error loading kernelspec %r", name, exc_info=True)
                continue
            native[name] = (resource_dir, spec.to_dict(), _env_places(spec))
        self._native = native
        self._native_files = tuple(files)
        # Key taken after listing: a change during it is caught at the next call.
        self._native_key = (*(stat_key(d) for d in dirs), *(stat_key(f) for f in files))
        self._native_version += 1

    def _unavailable_spec(self, kernel_name: str) -> KernelSpec | None:
        snap, _ = self.shared.current()
        for env in snap.envs:
            for entry in env.kernels:
                if entry.name.lower() == kernel_name.lower():
                    reason = "; ".join(p.message for p in env.problems) or "not available"
                    return self.kernel_spec_class(
                        resource_dir=entry.resource_dir,
                        **fallback_kernelspec(env, entry, reason),
                    )
        seen = self._seen.get(kernel_name)
        if seen is not None:
            env, entry = seen
            return self.kernel_spec_class(
                resource_dir=entry.resource_dir,
                **fallback_kernelspec(env, entry, f"environment '{env.name}' is gone"),
            )
        return None


def _env_places(spec: KernelSpec) -> tuple[str, ...]:
    """Directories that tell which environment a native kernelspec runs in (resolved, with /).

    Its interpreter's directory (not the interpreter itself: an env's bin/python is often a
    symlink elsewhere), nb_conda_kernels' ``conda_env_path`` metadata, and the environment argument
    of nb_conda_kernels' runner (``python -m nb_conda_kernels.runner CONDA_ROOT ENV ...``).
    """
    places: list[str] = []
    argv = list(spec.argv or [])
    if argv:
        exe = argv[0]
        found = exe if os.path.isabs(exe) else shutil.which(exe)
        if found:
            places.append(os.path.realpath(os.path.dirname(found)))
    env_path = (spec.metadata or {}).get("conda_env_path")
    if isinstance(env_path, str) and env_path:
        places.append(os.path.realpath(env_path))
    if "nb_conda_kernels.runner" in argv:
        at = argv.index("nb_conda_kernels.runner")
        if at + 2 < len(argv):
            places.append(os.path.realpath(argv[at + 2]))
    return tuple(os.path.join(p, "") for p in places)


# -- kernelspec files for tools that run without the server ----------------------------------------


def sync_kernelspecs(snapshot: Snapshot, directory: Path) -> tuple[list[str], list[str]]:
    """Write every usable shared kernel as a kernelspec directory; remove stale ones we own.

    Returns ``(written, removed)`` kernel names. Directories we did not write are never touched.
    """
    directory.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, SpecDict] = {}
    sources: dict[str, str] = {}
    for env in snapshot.envs:
        if not env.usable:
            continue
        for entry in env.kernels:
            wanted[entry.name.lower()] = shared_kernelspec(env, entry)
            sources[entry.name.lower()] = entry.resource_dir
    written: list[str] = []
    for name, spec in sorted(wanted.items()):
        target = directory / name
        if target.exists() and not (target / OWNER_MARKER).exists():
            continue  # an admin's own kernelspec of that name wins
        _write_spec_dir(target, spec, Path(sources[name]))
        written.append(name)
    removed: list[str] = []
    for child in sorted(directory.iterdir()):
        if child.name not in wanted and (child / OWNER_MARKER).is_file():
            shutil.rmtree(child)
            removed.append(child.name)
    return written, removed


def _write_spec_dir(target: Path, spec: Mapping[str, Any], source: Path) -> None:
    staging = target.with_name(f".{target.name}.tmp{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    # Logos and kernel.js travel with the spec, as `jupyter kernelspec install` would copy them.
    try:
        for item in source.iterdir():
            if item.is_file() and item.name != "kernel.json":
                shutil.copy2(item, staging / item.name)
    except OSError:
        pass
    (staging / "kernel.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    (staging / OWNER_MARKER).write_text("written by `jupyter envshare kernels sync`\n")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
