"""Realistic shared conda installations (versioned trees, a ``current`` symlink, broken envs).

Sites publish read-only environments as ``<root>/<generation>/envs/<env>`` and point users at
``<root>/current -> <generation>``, swapping that link when a new generation is rolled out. The
builders here reproduce that with genuine rattler-installed environments, plus the envs users
trip over: a non-Python kernel, no kernel at all, activation hooks, and broken ones.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rattler import Gateway

from jupyter_envshare.testing.envfactory import (
    PLACEHOLDER,
    PackageSpec,
    absolute,
    abuild_channel,
    activate_package,
    ainstall_env,
    asolve,
    env_vars_package,
    module_package,
    python_kernel_package,
    python_runtime_packages,
    r_kernel_package,
    stub_package,
    synchronous,
    write_conda_state,
)

__all__ = [
    "DEMO_CURRENT",
    "ISIS_VERSIONS",
    "PYTHON_KERNEL_PACKAGE",
    "R_KERNEL_PACKAGE",
    "SharedInstallation",
    "abuild_demo_installation",
    "abuild_isis_installation",
    "abuild_second_generation",
    "amake_corrupt_kernel_json",
    "amake_private_records",
    "amake_unreadable_env",
    "build_demo_installation",
    "build_isis_installation",
    "build_second_generation",
    "make_corrupt_kernel_json",
    "make_dangling_symlink",
    "make_private_records",
    "make_unreadable_env",
    "restore_permissions",
    "swap_current",
]

ISIS_VERSIONS: tuple[str, ...] = (
    "3.6.0",
    "3.7.0",
    "3.7.1",
    "3.8.0",
    "3.9.0",
    "3.9.1",
    "3.10.0",
    "4.0.0",
    "4.0.1",
    "4.1.0",
    "4.1.1",
    "4.2.0",
    "4.2.1",
    "4.3.0",
)
"""The isis versions of the default first-generation tree (oldest first)."""

PYTHON_KERNEL_PACKAGE = "envshare-kernel-python"
"""Package name of the python kernelspec (kernel dir ``python3``)."""

R_KERNEL_PACKAGE = "envshare-kernel-r"
"""Package name of the IRkernel-style kernelspec (kernel dir ``ir``)."""

DEMO_CURRENT = "v4.8"
"""The generation ``current`` points at in the demo installation."""

# Realistic creation dates: envs of a long-lived installation were made months apart.
_EPOCH = datetime(2019, 1, 15, 9, 30, 4)
_STEP = timedelta(days=97, hours=3, minutes=17, seconds=11)

_ACTIVATE_SCRIPT = """\
# Installed by envshare-activate-test: proves that conda's activate.d hooks ran.
export ENVSHARE_ACTIVATED=yes
export PATH="$CONDA_PREFIX/opt/tool/bin:$PATH"
"""
_DEACTIVATE_SCRIPT = "unset ENVSHARE_ACTIVATED\n"
_TOOL_SCRIPT = f"""\
#!/bin/sh
# Found on PATH only when the env was activated; says which env it belongs to.
echo "envshare-tool from {PLACEHOLDER}"
"""


@dataclass
class SharedInstallation:
    """One generation of a shared installation: ``root/<generation>/envs/<env>``."""

    root: Path
    generation: str
    envs_dir: Path
    env_prefixes: dict[str, Path]
    channel_dir: Path
    cache_dir: Path
    launchable: set[str] = field(default_factory=set)
    # env name -> (importable module, its ENV_MARKER), for envs that ship a marker module.
    markers: dict[str, tuple[str, str]] = field(default_factory=dict)
    # env name -> kernelspec directory names under share/jupyter/kernels.
    kernels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # generation name -> its envs dir, for every generation built under root so far.
    generations: dict[str, Path] = field(default_factory=dict)
    build_seconds: float = 0.0

    @property
    def current(self) -> Path:
        """The ``root/current`` symlink."""
        return self.root / "current"

    @property
    def current_envs_dir(self) -> Path:
        """The envs dir as users see it, through ``current``."""
        return self.current / "envs"

    def prefix(self, env: str) -> Path:
        """Return the real prefix of ``env`` (what the installer wrote into its files)."""
        return self.env_prefixes[env]


@dataclass(frozen=True)
class _Txn:
    specs: tuple[str, ...]
    when: datetime


@dataclass(frozen=True)
class _EnvPlan:
    name: str
    transactions: tuple[_Txn, ...]
    launchable: bool = False
    marker: tuple[str, str] | None = None
    kernels: tuple[str, ...] = ()
    after: Callable[[Path], Any] | None = None


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    # "3.10.0" sorts after "3.9.1": compare numerically, text parts after numbers.
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"[.\-_]", version))


def _newest(versions: Sequence[str]) -> str:
    return max(versions, key=_version_key)


def _common_packages() -> list[PackageSpec]:
    runtime = python_runtime_packages()
    return [
        *runtime,
        python_kernel_package(PYTHON_KERNEL_PACKAGE, depends=["ipykernel"]),
        r_kernel_package(R_KERNEL_PACKAGE, depends=["r-base"]),
        stub_package("r-base", "4.3.2", build="h0_1"),
    ]


def _isis_packages(versions: Iterable[str]) -> list[PackageSpec]:
    packages: list[PackageSpec] = []
    for version in versions:
        packages += [
            module_package("isis_marker", version, marker=f"isis{version}"),
            PackageSpec(
                name="isis",
                version=version,
                depends=(f"isis_marker =={version}", "python"),
                files={"share/isis/VERSION": f"{version}\n"},
            ),
        ]
    return packages


def _activation_packages() -> list[PackageSpec]:
    return [
        PackageSpec(
            name="envshare-tool",
            version="1.0",
            files={"opt/tool/bin/envshare-tool": _TOOL_SCRIPT},
            executables=frozenset({"opt/tool/bin/envshare-tool"}),
        ),
        activate_package(
            "envshare-test",
            _ACTIVATE_SCRIPT,
            deactivate_text=_DEACTIVATE_SCRIPT,
            depends=["envshare-tool"],
        ),
        env_vars_package("envshare-site-vars", {"ENVSHARE_SITE": "demo-site"}, file_stem="site"),
        module_package("envshare_marker", "1.0", marker="activated"),
    ]


def _isis_plan(version: str, index: int, *, launchable: bool, newest: bool) -> _EnvPlan:
    created = _EPOCH + index * _STEP
    if newest:
        # The newest env got its kernel in a second `conda install`: two history blocks.
        txns: tuple[_Txn, ...] = (
            _Txn((f"isis=={version}", "ipykernel"), created),
            _Txn((PYTHON_KERNEL_PACKAGE,), created + timedelta(days=2, hours=4, minutes=41)),
        )
    else:
        txns = (_Txn((f"isis=={version}", PYTHON_KERNEL_PACKAGE), created),)
    return _EnvPlan(
        name=f"isis{version}",
        transactions=txns,
        launchable=launchable,
        marker=("isis_marker", f"isis{version}"),
        kernels=("python3",),
    )


def _isis_plans(versions: Sequence[str], first_index: int, wanted: set[str]) -> list[_EnvPlan]:
    # Oldest first, so creation dates grow with the version.
    newest = _newest(versions)
    return [
        _isis_plan(v, first_index + i, launchable=f"isis{v}" in wanted, newest=v == newest)
        for i, v in enumerate(sorted(versions, key=_version_key))
    ]


def _rstats_plan(when: datetime) -> _EnvPlan:
    return _EnvPlan("rstats", (_Txn(("r-base", R_KERNEL_PACKAGE), when),), kernels=("ir",))


def _activated_plan(when: datetime, *, launchable: bool) -> _EnvPlan:
    def write_state(prefix: Path) -> None:
        write_conda_state(prefix, {"ENVSHARE_STATE_VAR": "from-state"})

    specs = (
        PYTHON_KERNEL_PACKAGE,
        "envshare-test",
        "envshare-site-vars",
        "envshare_marker",
    )
    return _EnvPlan(
        "activated",
        (_Txn(specs, when),),
        launchable=launchable,
        marker=("envshare_marker", "activated"),
        kernels=("python3",),
        after=write_state,
    )


async def _build_envs(
    envs_dir: Path,
    channel_dir: Path,
    cache_dir: Path,
    plans: Sequence[_EnvPlan],
) -> dict[str, Path]:
    # One gateway for the whole build: the channel is indexed before and not touched during.
    gateway = Gateway()
    first_specs = {plan.transactions[0].specs for plan in plans}
    # Solve each distinct creation spec set once; installs then only link.
    solved: dict[tuple[str, ...], list[Any]] = {}
    for specs in sorted(first_specs):
        solved[specs] = await asolve(channel_dir, specs, gateway=gateway)

    async def build(plan: _EnvPlan) -> Path:
        prefix = envs_dir / plan.name
        for i, txn in enumerate(plan.transactions):
            await ainstall_env(
                prefix,
                channel_dir,
                list(txn.specs),
                python_venv=plan.launchable and i == 0,
                cache_dir=cache_dir,
                when=txn.when,
                gateway=gateway,
                records=solved[txn.specs] if i == 0 else None,
            )
        if plan.after is not None:
            await asyncio.to_thread(plan.after, prefix)
        return prefix

    await asyncio.to_thread(envs_dir.mkdir, parents=True, exist_ok=True)
    prefixes = await asyncio.gather(*(build(plan) for plan in plans))
    return {plan.name: prefix for plan, prefix in zip(plans, prefixes, strict=True)}


def _build_paths(base: Path) -> tuple[Path, Path]:
    # Outside the installation tree so discovery code never sees the channel or package cache.
    work = absolute(base) / "envshare-build"
    return work / "channel", work / "pkgs"


def _point_current(root: Path, generation: str) -> Path:
    # Relative, like sites do it, so the tree can be moved or mounted elsewhere.
    tmp = root / f".current.{uuid.uuid4().hex}"
    tmp.symlink_to(generation)
    # rename(2) replaces the old link atomically: readers see the old or the new tree, never none.
    return tmp.replace(root / "current")


def swap_current(inst: SharedInstallation, target: str) -> Path:
    """Atomically point ``inst.root/current`` at generation ``target``; return the link path."""
    if "/" in target or not (inst.root / target).is_dir():
        raise FileNotFoundError(f"no generation {target!r} under {inst.root}")
    return _point_current(inst.root, target)


async def _abuild_generation(
    root: Path,
    generation: str,
    channel_dir: Path,
    cache_dir: Path,
    plans: Sequence[_EnvPlan],
) -> SharedInstallation:
    envs_dir = root / generation / "envs"
    prefixes = await _build_envs(envs_dir, channel_dir, cache_dir, plans)
    return SharedInstallation(
        root=root,
        generation=generation,
        envs_dir=envs_dir,
        env_prefixes=prefixes,
        channel_dir=channel_dir,
        cache_dir=cache_dir,
        launchable={p.name for p in plans if p.launchable},
        markers={p.name: p.marker for p in plans if p.marker is not None},
        kernels={p.name: p.kernels for p in plans},
        generations={generation: envs_dir},
    )


def _check_launchable(launchable: set[str], names: set[str]) -> None:
    unknown = launchable - names
    if unknown:
        raise ValueError(f"launchable names no env of this layout: {sorted(unknown)}")


async def abuild_isis_installation(
    base: Path,
    *,
    versions: Sequence[str] = ISIS_VERSIONS,
    launchable: Sequence[str] | None = None,
    generation: str = "v1",
) -> SharedInstallation:
    """Build ``base/cpkgs/<generation>/envs/{isis<v>..., rstats, nokernel, activated}``.

    Each ``isis<v>`` has the ``python3`` kernel and an ``isis_marker`` module whose ENV_MARKER is
    ``isis<v>``. Only envs named in ``launchable`` (default: the newest isis and ``activated``)
    get a real ``bin/python``; the others list fine but cannot start. ``current`` points at the
    generation.
    """
    started = time.perf_counter()
    root = absolute(base) / "cpkgs"
    channel_dir, cache_dir = _build_paths(base)
    wanted = set(launchable) if launchable is not None else {f"isis{_newest(versions)}", "activated"}
    packages = [*_common_packages(), *_activation_packages(), *_isis_packages(versions)]
    await abuild_channel(channel_dir, packages)

    plans = _isis_plans(versions, 0, wanted)
    late = _EPOCH + len(versions) * _STEP
    plans += [
        _rstats_plan(_EPOCH + _STEP / 2),
        _EnvPlan("nokernel", (_Txn(("python",), late),)),
        _activated_plan(late + timedelta(days=3), launchable="activated" in wanted),
    ]
    _check_launchable(wanted, {p.name for p in plans})
    inst = await _abuild_generation(root, generation, channel_dir, cache_dir, plans)
    _point_current(root, generation)
    inst.build_seconds = time.perf_counter() - started
    return inst


build_isis_installation = synchronous(abuild_isis_installation)


async def abuild_second_generation(
    inst: SharedInstallation,
    name: str = "v2",
    versions: Sequence[str] = ("4.3.0", "4.4.0"),
    *,
    launchable: Sequence[str] | None = None,
) -> SharedInstallation:
    """Build ``root/<name>/envs/isis<v>...`` next to ``inst`` without touching ``current``.

    Default launchable: the newest version. Switch users over with ``swap_current(inst, name)``.
    """
    started = time.perf_counter()
    wanted = set(launchable) if launchable is not None else {f"isis{_newest(versions)}"}
    # Packages already in the channel are kept as they are; only new versions are added.
    await abuild_channel(inst.channel_dir, [*_common_packages(), *_isis_packages(versions)])
    plans = _isis_plans(versions, len(inst.env_prefixes) + 2, wanted)
    _check_launchable(wanted, {p.name for p in plans})
    second = await _abuild_generation(inst.root, name, inst.channel_dir, inst.cache_dir, plans)
    inst.generations[name] = second.envs_dir
    second.generations = inst.generations
    second.build_seconds = time.perf_counter() - started
    return second


build_second_generation = synchronous(abuild_second_generation)


async def abuild_demo_installation(base: Path) -> SharedInstallation:
    """Build the demo tree: ``cpkgs/v4.8`` (current) and an older ``cpkgs/v4.7``; return v4.8.

    v4.8 has ``isis4.2.0``, ``isis4.3.0``, ``mlpy`` (all launchable) and ``rstats``; v4.7 has
    launchable ``isis4.1.1`` and ``isis4.2.0`` and ``rstats``. Histories span several
    transactions, including a real upgrade of ``mlpy`` 1.1.0 -> 1.2.0.
    """
    started = time.perf_counter()
    root = absolute(base) / "cpkgs"
    channel_dir, cache_dir = _build_paths(base)
    packages = [
        *_common_packages(),
        module_package("mlpy", "1.1.0", marker="mlpy"),
        module_package("mlpy", "1.2.0", marker="mlpy"),
        *_isis_packages(["4.1.1", "4.2.0", "4.3.0"]),
    ]
    await abuild_channel(channel_dir, packages)

    def isis(version: str, created: datetime) -> _EnvPlan:
        return _EnvPlan(
            f"isis{version}",
            (
                _Txn((f"isis=={version}", "ipykernel"), created),
                _Txn((PYTHON_KERNEL_PACKAGE,), created + timedelta(hours=3, minutes=12)),
            ),
            launchable=True,
            marker=("isis_marker", f"isis{version}"),
            kernels=("python3",),
        )

    older = [
        isis("4.1.1", datetime(2024, 2, 6, 10, 14, 51)),
        isis("4.2.0", datetime(2024, 6, 18, 8, 2, 37)),
        _rstats_plan(datetime(2024, 3, 1, 15, 45, 9)),
    ]
    mlpy = _EnvPlan(
        "mlpy",
        (
            _Txn(("python", "ipykernel", PYTHON_KERNEL_PACKAGE), datetime(2024, 9, 2, 11, 20, 5)),
            _Txn(("mlpy==1.1.0",), datetime(2024, 9, 2, 11, 24, 40)),
            _Txn(("mlpy==1.2.0",), datetime(2025, 1, 27, 16, 3, 18)),
        ),
        launchable=True,
        marker=("mlpy", "mlpy"),
        kernels=("python3",),
    )
    current = [
        isis("4.2.0", datetime(2024, 11, 4, 9, 0, 12)),
        isis("4.3.0", datetime(2025, 3, 14, 13, 51, 4)),
        mlpy,
        _rstats_plan(datetime(2024, 11, 4, 9, 40, 33)),
    ]
    old = await _abuild_generation(root, "v4.7", channel_dir, cache_dir, older)
    inst = await _abuild_generation(root, DEMO_CURRENT, channel_dir, cache_dir, current)
    inst.generations = {**old.generations, **inst.generations}
    _point_current(root, DEMO_CURRENT)
    inst.build_seconds = time.perf_counter() - started
    return inst


build_demo_installation = synchronous(abuild_demo_installation)


# ---------------------------------------------------------------------------------------------
# Broken environments
# ---------------------------------------------------------------------------------------------


async def _abuild_plain_env(
    envs_dir: Path,
    name: str,
    channel_dir: Path | None,
    cache_dir: Path | None,
    *,
    publish: bool = True,
) -> Path:
    # Without an explicit channel, use the spots a conda root has next to envs/: conda-build's
    # local channel (conda-bld) and the package cache (pkgs).
    envs_dir = absolute(envs_dir)
    channel = channel_dir if channel_dir is not None else envs_dir.parent / "conda-bld"
    cache = cache_dir if cache_dir is not None else envs_dir.parent / "pkgs"
    await abuild_channel(channel, _common_packages())
    await asyncio.to_thread(envs_dir.mkdir, parents=True, exist_ok=True)
    return await ainstall_env(
        envs_dir / name,
        channel,
        [PYTHON_KERNEL_PACKAGE],
        cache_dir=cache,
        publish=publish,
    )


def _truncate_kernel_json(prefix: Path) -> None:
    for spec in sorted((prefix / "share" / "jupyter" / "kernels").glob("*/kernel.json")):
        text = spec.read_text()
        # Unlink first: an installed file may be a hardlink into the package cache, and writing
        # through it would corrupt every env linked from that cache entry.
        spec.unlink()
        spec.write_text(text[: len(text) // 2])


async def amake_corrupt_kernel_json(
    envs_dir: Path, name: str, *, channel_dir: Path | None = None, cache_dir: Path | None = None
) -> Path:
    """Build a valid env whose ``kernel.json`` is then cut in half (invalid JSON)."""
    prefix = await _abuild_plain_env(envs_dir, name, channel_dir, cache_dir)
    await asyncio.to_thread(_truncate_kernel_json, prefix)
    return prefix


make_corrupt_kernel_json = synchronous(amake_corrupt_kernel_json)


async def amake_private_records(
    envs_dir: Path, name: str, *, channel_dir: Path | None = None, cache_dir: Path | None = None
) -> Path:
    """Build an env whose ``conda-meta/*.json`` stay 0600 as rattler wrote them (unpublished)."""
    return await _abuild_plain_env(envs_dir, name, channel_dir, cache_dir, publish=False)


make_private_records = synchronous(amake_private_records)


def make_dangling_symlink(envs_dir: Path, name: str) -> Path:
    """Create ``envs_dir/name`` as a symlink to a directory that does not exist; return it."""
    link = Path(envs_dir).absolute() / name
    link.parent.mkdir(parents=True, exist_ok=True)
    # Relative target, as a site that moved or deleted the real env would leave it behind.
    link.symlink_to(f"../removed/{name}", target_is_directory=True)
    return link


async def amake_unreadable_env(
    envs_dir: Path, name: str, *, channel_dir: Path | None = None, cache_dir: Path | None = None
) -> Path:
    """Build a valid env and ``chmod 000`` its prefix.

    As root (CAP_DAC_OVERRIDE) the directory stays readable, so tests of the unreadable case
    must skip or assert differently when ``os.geteuid() == 0``. Call ``restore_permissions``
    before deleting it yourself.
    """
    prefix = await _abuild_plain_env(envs_dir, name, channel_dir, cache_dir)
    await asyncio.to_thread(prefix.chmod, 0o000)
    return prefix


make_unreadable_env = synchronous(amake_unreadable_env)


def restore_permissions(prefix: Path) -> None:
    """Undo ``make_unreadable_env`` (``chmod 755``) so the env can be listed or removed."""
    Path(prefix).chmod(0o755)
