"""Build real conda packages, channels and environments offline with py-rattler.

There is no conda binary on the test machines, so this module makes tiny noarch packages with
conda-package-handling, indexes them into a local channel, and lets rattler solve and link them
into genuine prefixes (``conda-meta/*.json`` records, placeholder rewriting, update transactions).
Everything rattler leaves out that a real conda leaves behind (``conda-meta/history``, readable
records) is added here so the result looks like an environment published on a shared filesystem.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Final, Literal, ParamSpec, TypeVar, get_args

import conda_package_handling.api as cph
import rattler
from rattler import Channel, Gateway, MatchSpec, PrefixRecord, VirtualPackage
from rattler.index import index_fs

__all__ = [
    "DEFAULT_CONDA_VERSION",
    "PLACEHOLDER",
    "HistoryBlock",
    "PackageSpec",
    "PythonStyle",
    "absolute",
    "abuild_channel",
    "activate_package",
    "ainstall_env",
    "asolve",
    "build_channel",
    "dist_string",
    "env_vars_package",
    "install_env",
    "installed_records",
    "kernel_package",
    "module_package",
    "parse_history",
    "python_kernel_package",
    "python_runtime_packages",
    "python_xy",
    "r_kernel_package",
    "read_history",
    "run_outside_loop",
    "stub_package",
    "synchronous",
    "write_conda_state",
]

T = TypeVar("T")
P = ParamSpec("P")

PythonStyle = Literal["conda", "venv"]
"""How a launchable env gets its interpreter (see ``install_env(python_style=...)``)."""

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
"""The prefix placeholder conda-build writes into text files; rattler rewrites it on install."""

DEFAULT_CONDA_VERSION = "24.1.2"
"""The conda version claimed in generated history blocks."""

PLATFORM_SUBDIR: Final = "linux-64"
"""The platform subdir solved against besides ``noarch``."""

# A fixed build timestamp keeps package metadata identical when the same spec is built twice.
_PACKAGE_TIMESTAMP_MS = 1_741_000_000_000
# Sidecar at the channel root (not inside a subdir, where the indexer looks for packages) that
# remembers what each published file was built from, so rebuilding a channel is idempotent.
_FINGERPRINTS = ".envshare-fingerprints.json"
_HISTORY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SPEC_NAME = re.compile(r"^\s*(?:[^:\s]+::)?([A-Za-z0-9_.\-]+)")
# venv's activation scripts do not exist in a conda env; leaving them would let code "activate"
# an env through venv and skip conda's activate.d hooks without any test noticing.
_VENV_ACTIVATE_SCRIPTS = ("activate", "activate.csh", "activate.fish", "Activate.ps1")
# Entries of the host stdlib a conda-style env must not share: its own site-packages, and pip's
# PEP 668 marker (Debian ships one; sealing writes the env's own, never through a link to the host).
_STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "EXTERNALLY-MANAGED"})
# conda's console-script template (conda.core.portability / conda.gateways.disk.create).
_ENTRY_POINT_TEMPLATE = """\
# -*- coding: utf-8 -*-
import re
import sys

from {module} import {import_name}

if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])
    sys.exit({func}())
"""
# Linux's historical limit on a #! line (conda's MAX_SHEBANG_LENGTH): longer ones get a trampoline.
_MAX_SHEBANG_LENGTH = 127
_PIP_ENTRY_POINT = "pip._internal.cli.main:main"
# Asks a freshly made interpreter where it thinks it lives (-I -S: no environment, no site).
_PROBE = (
    "import json, site, sys, sysconfig; "
    "print(json.dumps([sys.prefix, sys.base_prefix, sysconfig.get_path('stdlib'), site.getsitepackages()]))"
)


def python_xy() -> str:
    """Return the running interpreter's ``major.minor`` (the ``lib/pythonX.Y`` directory name)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def absolute(path: Path | str) -> Path:
    """Return ``path`` made absolute (no symlinks resolved: prefixes are what users typed)."""
    # Only consults the cwd: cheap enough for async code, which ruff's ASYNC240 cannot know.
    return Path(path).absolute()


def run_outside_loop(name: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()`` with ``asyncio.run``, refusing clearly when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # asyncio.run would fail with a confusing message (and nested loops are not an option), so
    # point at the async twin instead; the coroutine is never created, so no "never awaited".
    raise RuntimeError(f"{name}() was called inside a running event loop; use `await a{name}(...)` there")


def synchronous(afunc: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Return the synchronous form of the async function ``afunc``, named without its leading ``a``.

    The result takes the same arguments, runs ``afunc`` to completion with ``asyncio.run`` and
    raises ``RuntimeError`` (pointing at ``await afunc(...)``) inside a running event loop.
    ``build_channel = synchronous(abuild_channel)`` defines ``build_channel``.
    """
    async_name = afunc.__name__
    if not async_name.startswith("a") or len(async_name) < 2:
        raise ValueError(f"{async_name!r}: an async builder's name starts with 'a' (abuild_x -> build_x)")
    name = async_name[1:]

    @functools.wraps(afunc)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_outside_loop(name, lambda: afunc(*args, **kwargs))

    wrapper.__name__ = name
    wrapper.__qualname__ = afunc.__qualname__.removesuffix(async_name) + name
    summary = f"Synchronous form of ``{async_name}`` (raises ``RuntimeError`` inside a running event loop)."
    wrapper.__doc__ = f"{summary}\n\n{inspect.cleandoc(afunc.__doc__)}" if afunc.__doc__ else summary
    return wrapper


@dataclass(frozen=True)
class PackageSpec:
    """A tiny conda package: index metadata plus text payload files (relative path -> content)."""

    name: str
    version: str
    build: str = "h0_0"
    build_number: int = 0
    depends: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    noarch: str | None = "generic"
    executables: frozenset[str] = frozenset()
    license: str = "BSD-3-Clause"

    def __post_init__(self) -> None:
        # Freeze the payload: a spec shared between layouts must not change after being published.
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        object.__setattr__(self, "depends", tuple(self.depends))
        object.__setattr__(self, "executables", frozenset(self.executables))
        for rel in self.files:
            parts = PurePosixPath(rel).parts
            if not parts or rel.startswith("/") or ".." in parts or parts[0] == "info":
                raise ValueError(f"{self.dist_name}: bad payload path {rel!r}")
        unknown = self.executables - set(self.files)
        if unknown:
            raise ValueError(f"{self.dist_name}: executables not in files: {sorted(unknown)}")

    def __hash__(self) -> int:
        # The generated hash would try to hash the mapping proxy; the identity of a package is
        # its file name plus its content fingerprint.
        return hash((self.dist_name, self.fingerprint()))

    @property
    def dist_name(self) -> str:
        """``name-version-build`` as conda prints it."""
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def filename(self) -> str:
        """The archive file name in the channel."""
        return f"{self.dist_name}.conda"

    @property
    def subdir(self) -> str:
        """The channel subdir the package belongs to."""
        return "noarch" if self.noarch else PLATFORM_SUBDIR

    def index_json(self) -> dict[str, Any]:
        """Return the ``info/index.json`` document."""
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "constrains": [],
            "license": self.license,
            "subdir": self.subdir,
            "timestamp": _PACKAGE_TIMESTAMP_MS,
        }
        if self.noarch:
            doc["noarch"] = self.noarch
        else:
            doc.update(arch="x86_64", platform="linux")
        return doc

    def fingerprint(self) -> str:
        """Return a digest of everything that ends up in the archive."""
        payload = {
            "index": self.index_json(),
            "files": dict(sorted(self.files.items())),
            "executables": sorted(self.executables),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Package content helpers
# ---------------------------------------------------------------------------------------------


def stub_package(name: str, version: str, *, build: str = "h0_0", depends: Sequence[str] = ()) -> PackageSpec:
    """Return a metadata-only package (a record in conda-meta, no files)."""
    return PackageSpec(name=name, version=version, build=build, depends=tuple(depends))


def python_runtime_packages() -> list[PackageSpec]:
    """Return metadata-only ``python`` and ``ipykernel`` records matching the running interpreter.

    The interpreter itself is the running one, made to live in the env (see
    ``install_env(python_venv=True)``); these records make conda-meta tell the same story a real
    env would (python version, ipykernel).
    """
    try:
        ipykernel_version = importlib.metadata.version("ipykernel")
    except importlib.metadata.PackageNotFoundError:
        ipykernel_version = "6.29.5"
    return [
        stub_package("python", platform.python_version(), build="h0_0_cpython"),
        stub_package("ipykernel", ipykernel_version, build="pyh0_0", depends=["python >=3.8"]),
    ]


def kernel_package(
    name: str,
    version: str,
    kernel_dir: str,
    kernel_spec: Mapping[str, Any],
    *,
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package shipping ``share/jupyter/kernels/<kernel_dir>/kernel.json``."""
    text = json.dumps(dict(kernel_spec), indent=1) + "\n"
    return PackageSpec(
        name=name,
        version=version,
        depends=tuple(depends),
        files={f"share/jupyter/kernels/{kernel_dir}/kernel.json": text},
    )


def python_kernel_package(
    name: str = "envshare-kernel-python",
    version: str = "1.0",
    *,
    kernel_dir: str = "python3",
    display_name: str = "Python 3",
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package with an ipykernel-style kernelspec whose argv is the env's bin/python."""
    spec = {
        "argv": [f"{PLACEHOLDER}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "metadata": {"debugger": True},
    }
    return kernel_package(name, version, kernel_dir, spec, depends=depends)


def r_kernel_package(
    name: str = "envshare-kernel-r",
    version: str = "1.0",
    *,
    kernel_dir: str = "ir",
    display_name: str = "R",
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package with an IRkernel-style kernelspec (the spec only; no R is installed)."""
    spec = {
        "argv": [
            f"{PLACEHOLDER}/bin/R",
            "--slave",
            "-e",
            "IRkernel::main()",
            "--args",
            "{connection_file}",
        ],
        "display_name": display_name,
        "language": "R",
    }
    return kernel_package(name, version, kernel_dir, spec, depends=depends)


def module_package(
    module_name: str,
    version: str,
    python_version: str | None = None,
    *,
    marker: str | None = None,
    name: str | None = None,
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package shipping an importable module that says which env it was installed in.

    The module defines ``__version__``, ``ENV_MARKER`` and ``PREFIX`` (rewritten by the installer
    to the env prefix). ``python_version`` defaults to the running interpreter, whose copy in a
    launchable env is what imports the module.
    """
    xy = python_version or python_xy()
    env_marker = marker if marker is not None else f"{module_name}-{version}"
    source = (
        f'"""Marker module installed by the envshare test package {name or module_name}."""\n\n'
        f"__version__ = {version!r}\n"
        f"ENV_MARKER = {env_marker!r}\n"
        f"PREFIX = {PLACEHOLDER!r}\n"
    )
    return PackageSpec(
        name=name or module_name,
        version=version,
        depends=tuple(depends),
        files={f"lib/python{xy}/site-packages/{module_name}/__init__.py": source},
    )


def activate_package(
    name: str,
    script_text: str,
    version: str = "1.0",
    *,
    deactivate_text: str | None = None,
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package shipping ``etc/conda/activate.d/<name>.sh`` (and optionally deactivate)."""
    files = {f"etc/conda/activate.d/{name}.sh": script_text}
    if deactivate_text is not None:
        files[f"etc/conda/deactivate.d/{name}.sh"] = deactivate_text
    return PackageSpec(name=name, version=version, depends=tuple(depends), files=files)


def env_vars_package(
    name: str,
    variables: Mapping[str, str],
    version: str = "1.0",
    *,
    file_stem: str | None = None,
    depends: Sequence[str] = (),
) -> PackageSpec:
    """Return a package shipping ``etc/conda/env_vars.d/<file_stem>.json``."""
    text = json.dumps(dict(variables), indent=2) + "\n"
    return PackageSpec(
        name=name,
        version=version,
        depends=tuple(depends),
        files={f"etc/conda/env_vars.d/{file_stem or name}.json": text},
    )


# ---------------------------------------------------------------------------------------------
# Channel
# ---------------------------------------------------------------------------------------------


def _pack(spec: PackageSpec, out_dir: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f"envshare-pkg-{spec.name}-") as tmp:
        src = Path(tmp)
        info = src / "info"
        info.mkdir()
        entries: list[dict[str, Any]] = []
        for rel, text in sorted(spec.files.items()):
            data = text.encode()
            target = src / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            # The archive keeps the mode and rattler links it as is: this is how tools get +x.
            target.chmod(0o755 if rel in spec.executables else 0o644)
            entry: dict[str, Any] = {
                "_path": rel,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
            if PLACEHOLDER in text:
                # Without this declaration rattler links the file untouched.
                entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
            entries.append(entry)
        (info / "paths.json").write_text(json.dumps({"paths": entries, "paths_version": 1}))
        (info / "files").write_text("".join(f"{rel}\n" for rel in sorted(spec.files)))
        (info / "index.json").write_text(json.dumps(spec.index_json(), indent=2))
        cph.create(str(src), None, spec.filename, out_folder=str(out_dir))


def _write_channel_packages(channel_dir: Path, packages: Sequence[PackageSpec]) -> None:
    # The indexer insists on a noarch subdir even when every package is arch-specific.
    (channel_dir / "noarch").mkdir(parents=True, exist_ok=True)
    fp_file = channel_dir / _FINGERPRINTS
    known: dict[str, str] = json.loads(fp_file.read_text()) if fp_file.exists() else {}
    for spec in packages:
        key = f"{spec.subdir}/{spec.filename}"
        fingerprint = spec.fingerprint()
        out_dir = channel_dir / spec.subdir
        if (out_dir / spec.filename).exists():
            if known.get(key) == fingerprint:
                continue
            # A channel never replaces a published file, and rattler's package cache keys on
            # name-version-build: silently rewriting one would install stale content.
            raise ValueError(
                f"{key} already exists in {channel_dir} with different content; "
                "give the new package another version or build string"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        _pack(spec, out_dir)
        known[key] = fingerprint
    fp_file.write_text(json.dumps(known, indent=1, sort_keys=True))


async def abuild_channel(channel_dir: Path, packages: Iterable[PackageSpec]) -> Path:
    """Write ``packages`` as ``.conda`` files into ``channel_dir`` and index it; return the dir.

    Packages already published with identical content are kept (so this is idempotent);
    a different package under an existing file name raises ``ValueError``.
    """
    channel_dir = absolute(channel_dir)
    specs = list(packages)
    await asyncio.to_thread(_write_channel_packages, channel_dir, specs)
    await index_fs(channel_dir, write_zst=False, write_shards=False)
    return channel_dir


build_channel = synchronous(abuild_channel)


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryBlock:
    """One ``==> date <==`` transaction block of ``conda-meta/history``."""

    timestamp: datetime
    command: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    update_specs: tuple[str, ...] = ()
    remove_specs: tuple[str, ...] = ()
    conda_version: str = DEFAULT_CONDA_VERSION

    def render(self) -> str:
        """Return the block as conda writes it (removals before additions, specs last)."""
        lines = [
            f"==> {self.timestamp.strftime(_HISTORY_TIME_FORMAT)} <==",
            f"# cmd: {self.command}",
            f"# conda version: {self.conda_version}",
        ]
        lines += [f"-{dist}" for dist in sorted(self.removed)]
        lines += [f"+{dist}" for dist in sorted(self.added)]
        # conda prints the spec lists with Python's list repr.
        if self.remove_specs:
            lines.append(f"# remove specs: {list(self.remove_specs)!r}")
        if self.update_specs:
            lines.append(f"# update specs: {list(self.update_specs)!r}")
        return "\n".join(lines) + "\n"


def _spec_list(text: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def parse_history(text: str) -> list[HistoryBlock]:
    """Parse ``conda-meta/history`` text into blocks (lines it does not know are skipped)."""
    blocks: list[HistoryBlock] = []
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current is not None:
            blocks.append(HistoryBlock(**current))

    for raw in text.splitlines():
        line = raw.strip()
        header = re.fullmatch(r"==>\s*(.+?)\s*<==", line)
        if header:
            flush()
            stamp = datetime.strptime(header.group(1), _HISTORY_TIME_FORMAT)
            current = {"timestamp": stamp, "command": "", "added": (), "removed": ()}
            continue
        if current is None or not line:
            continue
        if line.startswith("# cmd:"):
            current["command"] = line.removeprefix("# cmd:").strip()
        elif line.startswith("# conda version:"):
            current["conda_version"] = line.removeprefix("# conda version:").strip()
        elif line.startswith("# update specs:"):
            current["update_specs"] = _spec_list(line.removeprefix("# update specs:"))
        elif line.startswith("# remove specs:"):
            current["remove_specs"] = _spec_list(line.removeprefix("# remove specs:"))
        elif line.startswith("+"):
            current["added"] = (*current["added"], line[1:])
        elif line.startswith("-"):
            current["removed"] = (*current["removed"], line[1:])
    flush()
    return blocks


def read_history(prefix: Path) -> list[HistoryBlock]:
    """Return the parsed ``conda-meta/history`` of ``prefix`` (empty when missing)."""
    path = Path(prefix) / "conda-meta" / "history"
    return parse_history(path.read_text()) if path.exists() else []


def dist_string(record: Any, channel_label: str = "local") -> str:
    """Return conda's history spelling of a record: ``channel/subdir::name-version-build``.

    Packages from conda-build's local channel are spelled ``local::name-version-build``.
    """
    nvb = f"{record.name.normalized}-{record.version}-{record.build}"
    if channel_label == "local":
        return f"local::{nvb}"
    return f"{channel_label}/{record.subdir}::{nvb}"


# ---------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------


def installed_records(prefix: Path) -> list[Any]:
    """Return the ``PrefixRecord`` of every ``conda-meta/*.json`` in ``prefix``."""
    meta = Path(prefix) / "conda-meta"
    if not meta.is_dir():
        return []
    return [PrefixRecord.from_path(path) for path in sorted(meta.glob("*.json"))]


def write_conda_state(prefix: Path, env_vars: Mapping[str, str]) -> Path:
    """Write ``conda-meta/state`` as ``conda env config vars set`` does; return its path."""
    path = Path(prefix) / "conda-meta" / "state"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env_vars": dict(env_vars)}, indent=2) + "\n")
    path.chmod(0o644)
    return path


@functools.cache
def _virtual_packages() -> list[Any]:
    # Not needed for the noarch packages built here, but a PackageSpec may depend on __unix or
    # __glibc like real packages do. VirtualPackage.current() warns (deprecated): use detect().
    return list(VirtualPackage.detect())


async def asolve(
    channel_dir: Path,
    specs: Sequence[str],
    *,
    gateway: Any = None,
    locked: Sequence[Any] = (),
) -> list[Any]:
    """Solve ``specs`` against the local channel for linux-64 + noarch; return RepoDataRecords.

    A ``Gateway`` caches repodata in memory and never notices a re-indexed channel: share one
    only while the channel does not change.
    """
    return list(
        await rattler.solve(
            [Channel(absolute(channel_dir).as_uri())],
            list(specs),
            gateway=gateway if gateway is not None else Gateway(),
            platforms=[PLATFORM_SUBDIR, "noarch"],
            locked_packages=list(locked),
            virtual_packages=_virtual_packages(),
        )
    )


def _spec_name(spec: str) -> str:
    match = _SPEC_NAME.match(spec)
    if not match:
        raise ValueError(f"cannot find a package name in spec {spec!r}")
    return match.group(1).lower()


def _requested_specs(records: Sequence[Any]) -> list[str]:
    specs: list[str] = []
    for record in records:
        specs.extend(str(s) for s in record.requested_specs)
        if record.requested_spec:
            specs.append(str(record.requested_spec))
    return specs


def _merge_specs(previous: Sequence[str], new: Sequence[str]) -> list[str]:
    # Like `conda install`: the env keeps what was asked for before, and a new spec for the same
    # package replaces the old one (otherwise packages not in the new solve would be removed).
    merged: dict[str, str] = {}
    for spec in [*previous, *new]:
        merged[_spec_name(spec)] = spec
    return list(merged.values())


def _host_site_dirs() -> list[str]:
    candidates = [
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
        # Interpreters that are not venvs (Debian's python) keep packages elsewhere too.
        *site.getsitepackages(),
    ]
    seen: list[str] = []
    for candidate in candidates:
        if candidate and candidate not in seen and Path(candidate).is_dir():
            seen.append(candidate)
    return seen


def _make_python_venv(prefix: Path) -> None:
    if (prefix / "pyvenv.cfg").exists():
        return
    # The current interpreter, so the kernel's python matches the ipykernel it will import.
    proc = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python -m venv {prefix} failed: {proc.stderr.strip()}")
    for script in _VENV_ACTIVATE_SCRIPTS:
        (prefix / "bin" / script).unlink(missing_ok=True)
    site_dir = prefix / "lib" / f"python{python_xy()}" / "site-packages"
    site_dir.mkdir(parents=True, exist_ok=True)
    _write_host_site_pth(site_dir)


def _write_host_site_pth(site_dir: Path) -> None:
    # `import site; site.addsitedir(...)` rather than bare paths: addsitedir also processes the
    # .pth files in there (editable installs, namespace hooks), so whatever imports in the test
    # interpreter imports in the kernel.
    lines = [f"import site; site.addsitedir({d!r})\n" for d in _host_site_dirs()]
    (site_dir / "_envshare_host_site.pth").write_text("".join(lines))


@dataclass(frozen=True)
class _BasePython:
    """Where the running interpreter's installation keeps what a conda-style env copies or links."""

    binary: Path
    stdlib: Path
    libpython: Path | None


@functools.cache
def _base_python() -> _BasePython:
    base = Path(sys.base_prefix)
    # A venv's bin/python is a link to (or a copy of) the base interpreter, which venv records as
    # sys._base_executable; the real path is the binary itself, not pyenv's or a distro's link.
    executable = getattr(sys, "_base_executable", None) or sys.executable
    binary = Path(os.path.realpath(executable))
    if not binary.is_file():
        binary = Path(os.path.realpath(base / "bin" / f"python{python_xy()}"))
    stdlib = Path(sysconfig.get_path("stdlib", vars={"installed_base": str(base), "base": str(base)}))
    if not binary.is_file() or not (stdlib / "os.py").is_file():
        raise RuntimeError(f"cannot find the base interpreter of {sys.executable} (tried {binary}, {stdlib})")
    libpython: Path | None = None
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and isinstance(soname, str) and ".so" in soname:
        # Only a libpython in <base>/lib needs a link: that is where an $ORIGIN/../lib runpath
        # (conda, python-build-standalone) looks from the copied binary. One elsewhere (Debian's
        # LIBDIR is /usr/lib/<triplet>, and its /usr/bin/python3.X is static anyway) is found
        # the way the base binary finds it. LIBDIR may be a build-time path: check both.
        base_lib = (base / "lib").resolve()
        libdir = sysconfig.get_config_var("LIBDIR")
        for directory in (base / "lib", Path(str(libdir)) if libdir else None):
            if directory is not None and directory.resolve() == base_lib and (directory / soname).exists():
                libpython = directory / soname
                break
    return _BasePython(binary=binary, stdlib=stdlib, libpython=libpython)


def _link(target: Path | str, link: Path) -> None:
    if not link.is_symlink() and not link.exists():
        link.symlink_to(target)


def _shebang(python: Path) -> str:
    line = f"#!{python}\n"
    if len(line) > _MAX_SHEBANG_LENGTH or " " in str(python):
        # What conda writes when the kernel would truncate the #! line or split it at a space:
        # sh runs the file, and to python the second line is a string literal.
        line = f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\" #'''\n"
    return line


def _pip_entry_point() -> str:
    try:
        dist = importlib.metadata.distribution("pip")
    except importlib.metadata.PackageNotFoundError:
        return _PIP_ENTRY_POINT
    for ep in dist.entry_points:
        if ep.group == "console_scripts" and ep.name == "pip":
            return ep.value
    return _PIP_ENTRY_POINT


def _write_entry_point(path: Path, python: Path, entry_point: str) -> None:
    module, _, func = entry_point.partition(":")
    import_name = func.split(".")[0]
    text = _shebang(python) + _ENTRY_POINT_TEMPLATE.format(module=module, import_name=import_name, func=func)
    path.unlink(missing_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _probe_python(python: Path) -> tuple[str, str, str, list[str]]:
    proc = subprocess.run(
        [str(python), "-I", "-S", "-c", _PROBE], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{python} does not start: {proc.stderr.strip()}")
    prefix, base_prefix, stdlib, site_dirs = json.loads(proc.stdout)
    return str(prefix), str(base_prefix), str(stdlib), [str(d) for d in site_dirs]


def _make_python_conda(prefix: Path, script_prefix: Path | None = None) -> None:
    """Give ``prefix`` the running interpreter the way a conda ``python`` package lays it out.

    The binary is copied (python finds its prefix from the real path of its executable, so a
    link would lead it back to the base installation), the base stdlib is linked entry by entry
    into ``lib/pythonX.Y`` and site-packages is the env's own, with a ``.pth`` that adds the host
    site-packages. The result has ``sys.prefix == sys.base_prefix == prefix`` and, unlike a venv,
    honours an ``EXTERNALLY-MANAGED`` marker in its stdlib. ``bin/pip`` and ``bin/pip3`` are
    console scripts for that interpreter, as conda's pip package installs them, with shebangs
    naming ``script_prefix`` (default ``prefix``).
    """
    if (prefix / "pyvenv.cfg").exists():
        raise ValueError(f"{prefix} already has a venv python; it cannot also get a conda-style one")
    base = _base_python()
    bin_dir = prefix / "bin"
    python = bin_dir / base.binary.name
    bin_dir.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        # Copied, not hardlinked: a chmod or write on the env's file must never reach the host's.
        tmp = python.with_name(f".{python.name}.tmp")
        shutil.copy2(base.binary, tmp)
        tmp.chmod(0o755)
        tmp.replace(python)
    for alias in ("python", "python3", f"python{python_xy()}"):
        if alias != python.name:
            _link(python.name, bin_dir / alias)
    lib = prefix / "lib"
    stdlib = lib / base.stdlib.name
    stdlib.mkdir(parents=True, exist_ok=True)
    if base.libpython is not None:
        _link(base.libpython, lib / base.libpython.name)
    for entry in sorted(base.stdlib.iterdir()):
        if entry.name not in _STDLIB_SKIP:
            _link(entry, stdlib / entry.name)
    site_dir = stdlib / "site-packages"
    site_dir.mkdir(exist_ok=True)
    _write_host_site_pth(site_dir)

    got_prefix, got_base, got_stdlib, site_dirs = _probe_python(python)
    if {got_prefix, got_base} != {str(prefix)} or got_stdlib != str(stdlib):
        raise RuntimeError(
            f"{python} (a copy of {base.binary}) does not live in {prefix}: sys.prefix={got_prefix}, "
            f"sys.base_prefix={got_base}, stdlib={got_stdlib}"
        )
    if str(site_dir) not in site_dirs:
        # Debian's site.py reads <prefix>/lib/python3.X/dist-packages (and two others) outside a
        # venv, never site-packages: point the one it reads next to the stdlib at site-packages.
        beside = [Path(d) for d in site_dirs if Path(d).parent == stdlib]
        if not beside:
            raise RuntimeError(f"{python} reads no site-packages directory in {stdlib}: {site_dirs}")
        _link(site_dir.name, beside[0])

    shown = script_prefix if script_prefix is not None else prefix
    entry_point = _pip_entry_point()
    for name in ("pip", "pip3"):
        _write_entry_point(bin_dir / name, shown / "bin" / "python", entry_point)


def _make_python(prefix: Path, style: PythonStyle, script_prefix: Path | None = None) -> None:
    if style == "conda":
        _make_python_conda(prefix, script_prefix)
        return
    conda_python = prefix / "bin" / f"python{python_xy()}"
    if conda_python.is_file() and not conda_python.is_symlink() and not (prefix / "pyvenv.cfg").exists():
        raise ValueError(f"{prefix} already has a conda-style python; it cannot also become a venv")
    _make_python_venv(prefix)


def _finish_install(
    prefix: Path,
    publish: bool,
    before: Sequence[Any],
    blocks: Sequence[HistoryBlock] | None,
    make_block: Callable[[Sequence[Any], Sequence[Any]], HistoryBlock],
) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    # rattler tags every prefix as a cache directory (so backup tools skip it); conda does not,
    # and a shared env that backups ignore is not what sites publish.
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)
    if publish:
        # rattler writes records 0600; a correctly published shared env is world-readable.
        meta.chmod(0o755)
        for record in meta.glob("*.json"):
            record.chmod(0o644)
    if blocks is None:
        blocks = [make_block(before, installed_records(prefix))]
    history = meta / "history"
    with history.open("a") as fh:
        for block in blocks:
            fh.write(block.render())
    history.chmod(0o644)


async def ainstall_env(
    prefix: Path,
    channel_dir: Path,
    specs: Sequence[str],
    *,
    python_venv: bool = False,
    python_style: PythonStyle = "conda",
    cache_dir: Path,
    history: Sequence[HistoryBlock] | None = None,
    publish: bool = True,
    target_prefix: Path | None = None,
    channel_label: str = "local",
    when: datetime | None = None,
    gateway: Any = None,
    records: Sequence[Any] | None = None,
) -> Path:
    """Create or update the conda env at ``prefix`` from the local channel; return ``prefix``.

    On an existing env this is a ``conda install``: previously requested specs are kept, the
    installed records are passed to the solver and installer (an update transaction), and a
    history block is appended. ``python_venv`` (a historical name) first makes the env launchable:
    it gets the running interpreter, able to import what the running one imports, so
    ``<prefix>/bin/python -m ipykernel_launcher`` works with ``sys.prefix == prefix``.
    ``python_style`` says how: ``"conda"`` (default) lays the interpreter out as conda's python
    package does (``sys.base_prefix == prefix``, stdlib in ``lib/pythonX.Y``, ``bin/pip``), so pip
    honours an ``EXTERNALLY-MANAGED`` marker there; ``"venv"`` makes ``prefix`` a venv
    (``sys.base_prefix`` is the host's; pip ignores PEP 668 markers). ``history`` replaces the
    generated block; ``target_prefix`` is written into files instead of ``prefix`` (staging
    builds, pip's shebang too); ``records`` skips the solve (pre-solved for exactly these specs).
    """
    if python_style not in get_args(PythonStyle):
        raise ValueError(f"python_style must be one of {get_args(PythonStyle)}, not {python_style!r}")
    prefix = absolute(prefix)
    before = await asyncio.to_thread(installed_records, prefix)
    if python_venv:
        script_prefix = absolute(target_prefix) if target_prefix is not None else None
        await asyncio.to_thread(_make_python, prefix, python_style, script_prefix)
    requested = _merge_specs(_requested_specs(before), specs)
    if records is None:
        records = await asolve(channel_dir, requested, gateway=gateway, locked=before)
    await rattler.install(
        list(records),
        prefix,
        cache_dir=cache_dir,
        installed_packages=before,
        show_progress=False,
        # py-rattler 0.28 forwards these to Rust unconverted: pass the inner objects, not
        # MatchSpec instances (those raise a TypeError).
        requested_specs=[MatchSpec(s)._match_spec for s in requested],
        alternative_target_prefix=target_prefix,
    )
    shown = target_prefix if target_prefix is not None else prefix
    stamp = (when or datetime.now()).replace(microsecond=0)

    def make_block(old: Sequence[Any], new: Sequence[Any]) -> HistoryBlock:
        old_d = {dist_string(r, channel_label) for r in old}
        new_d = {dist_string(r, channel_label) for r in new}
        verb = "install" if old else "create"
        return HistoryBlock(
            timestamp=stamp,
            command=" ".join(["conda", verb, "-p", str(shown), *specs]),
            added=tuple(sorted(new_d - old_d)),
            removed=tuple(sorted(old_d - new_d)),
            update_specs=tuple(specs),
        )

    await asyncio.to_thread(_finish_install, prefix, publish, before, history, make_block)
    return prefix


install_env = synchronous(ainstall_env)
