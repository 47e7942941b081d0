"""The test env factory builds genuine, correctly published conda environments."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from jupyter_envshare.testing.envfactory import (
    build_channel,
    install_env,
    installed_records,
    module_package,
    python_kernel_package,
    python_runtime_packages,
    read_history,
)
from jupyter_envshare.testing.layouts import build_isis_installation, swap_current

HISTORY_HEADER = re.compile(r"^==> \d{4}-\d\d-\d\d \d\d:\d\d:\d\d <==$")


@pytest.fixture
def channel(tmp_path: Path) -> Path:
    """A local channel with the python runtime stubs, a kernel package and two marker versions."""
    return build_channel(
        tmp_path / "channel",
        [
            *python_runtime_packages(),
            python_kernel_package(depends=["ipykernel"]),
            module_package("isis_marker", "4.2.0", marker="isis4.2.0"),
            module_package("isis_marker", "4.3.0", marker="isis4.3.0"),
        ],
    )


def _install(
    tmp_path: Path,
    channel: Path,
    name: str,
    specs: list[str],
    *,
    python_venv: bool = False,
    publish: bool = True,
) -> Path:
    return install_env(
        tmp_path / "envs" / name,
        channel,
        specs,
        cache_dir=tmp_path / "pkgs",
        python_venv=python_venv,
        publish=publish,
    )


def test_history_has_conda_block_format(tmp_path: Path, channel: Path) -> None:
    # Given a fresh env
    prefix = _install(tmp_path, channel, "isis", ["envshare-kernel-python", "isis_marker==4.2.0"])

    # When its history is read
    lines = (prefix / "conda-meta" / "history").read_text().splitlines()

    # Then it is one conda-style create block listing every installed record
    assert HISTORY_HEADER.match(lines[0])
    assert lines[1] == f"# cmd: conda create -p {prefix} envshare-kernel-python isis_marker==4.2.0"
    assert lines[2] == "# conda version: 24.1.2"
    assert "+local::isis_marker-4.2.0-h0_0" in lines
    assert lines[-1] == "# update specs: ['envshare-kernel-python', 'isis_marker==4.2.0']"
    added = {line[1:] for line in lines if line.startswith("+")}
    records = {f"local::{r.name.normalized}-{r.version}-{r.build}" for r in installed_records(prefix)}
    assert added == records


def test_published_records_are_world_readable_private_ones_are_not(tmp_path: Path, channel: Path) -> None:
    # Given one env published and one left as rattler wrote it
    published = _install(tmp_path, channel, "published", ["isis_marker==4.2.0"])
    private = _install(tmp_path, channel, "private", ["isis_marker==4.2.0"], publish=False)

    # When the record modes are read
    def modes(prefix: Path) -> set[int]:
        return {stat.S_IMODE(p.stat().st_mode) for p in (prefix / "conda-meta").glob("*.json")}

    # Then published records are 0644 and unpublished ones 0600
    assert modes(published) == {0o644}
    assert modes(private) == {0o600}
    assert not (published / "CACHEDIR.TAG").exists()


def test_kernel_json_argv_is_rewritten_to_the_prefix(tmp_path: Path, channel: Path) -> None:
    # Given an env with the python kernel package
    prefix = _install(tmp_path, channel, "kern", ["envshare-kernel-python"])

    # When its kernel.json is loaded
    spec = json.loads((prefix / "share/jupyter/kernels/python3/kernel.json").read_text())

    # Then the placeholder became the real prefix
    assert spec["argv"] == [
        f"{prefix}/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["language"] == "python"


def test_launchable_env_python_runs_inside_the_prefix(tmp_path: Path, channel: Path) -> None:
    # Given a launchable env
    prefix = _install(
        tmp_path,
        channel,
        "launch",
        ["envshare-kernel-python", "isis_marker==4.3.0"],
        python_venv=True,
    )

    # When its python imports the marker module and ipykernel
    code = "import sys, ipykernel, isis_marker; print(sys.prefix); print(isis_marker.ENV_MARKER)"
    proc = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}},
    )

    # Then it runs in the env and sees the env's packages
    assert proc.stdout.splitlines() == [str(prefix), "isis4.3.0"]


def test_second_install_is_an_update_transaction(tmp_path: Path, channel: Path) -> None:
    # Given an env created with isis_marker 4.2.0
    prefix = _install(tmp_path, channel, "upd", ["envshare-kernel-python", "isis_marker==4.2.0"])

    # When isis_marker 4.3.0 is installed into it
    _install(tmp_path, channel, "upd", ["isis_marker==4.3.0"])

    # Then the record was replaced, earlier requests kept, and a second block appended
    names = {f"{r.name.normalized}-{r.version}" for r in installed_records(prefix)}
    assert "isis_marker-4.3.0" in names
    assert "isis_marker-4.2.0" not in names
    assert "envshare-kernel-python-1.0" in names
    blocks = read_history(prefix)
    assert len(blocks) == 2
    assert blocks[1].command == f"conda install -p {prefix} isis_marker==4.3.0"
    assert blocks[1].removed == ("local::isis_marker-4.2.0-h0_0",)
    assert blocks[1].added == ("local::isis_marker-4.3.0-h0_0",)
    marker = prefix / "lib"
    assert len(list(marker.glob("python*/site-packages/isis_marker/__init__.py"))) == 1


def test_sync_install_refuses_inside_a_running_loop(tmp_path: Path, channel: Path) -> None:
    # Given a running event loop
    async def call_sync() -> None:
        _install(tmp_path, channel, "loop", ["isis_marker==4.2.0"])

    # When the sync wrapper is called from it / Then it points at the async variant
    with pytest.raises(RuntimeError, match="await ainstall_env"):
        asyncio.run(call_sync())


def test_isis_layout_has_current_symlink_that_swaps(tmp_path: Path) -> None:
    # Given a small isis installation and a second generation
    inst = build_isis_installation(tmp_path, versions=("4.2.0", "4.3.0"))

    # When current is swapped to a new tree
    (inst.root / "v2" / "envs").mkdir(parents=True)
    swap_current(inst, "v2")

    # Then the first tree had the expected envs, and current is a relative link to v2
    assert set(inst.env_prefixes) == {"isis4.2.0", "isis4.3.0", "rstats", "nokernel", "activated"}
    assert inst.launchable == {"isis4.3.0", "activated"}
    assert (inst.prefix("isis4.3.0") / "bin" / "python").exists()
    assert not (inst.prefix("isis4.2.0") / "bin" / "python").exists()
    assert inst.current.readlink() == Path("v2")
