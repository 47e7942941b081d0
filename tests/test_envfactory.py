"""The test env factory builds genuine, correctly published conda environments."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_envshare.testing.envfactory import (
    PythonStyle,
    build_channel,
    install_env,
    installed_records,
    module_package,
    python_kernel_package,
    python_runtime_packages,
    python_xy,
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
    python_style: PythonStyle = "conda",
    publish: bool = True,
) -> Path:
    return install_env(
        tmp_path / "envs" / name,
        channel,
        specs,
        cache_dir=tmp_path / "pkgs",
        python_venv=python_venv,
        python_style=python_style,
        publish=publish,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


def _run(*argv: str | Path) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=_clean_env(), check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


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


_PYTHON_FACTS = (
    "import json, sys, sysconfig, ipykernel, isis_marker; print(json.dumps({"
    "'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'executable': sys.executable, "
    "'stdlib': sysconfig.get_path('stdlib'), 'marker': isis_marker.ENV_MARKER, "
    "'marker_prefix': isis_marker.PREFIX, 'ipykernel': ipykernel.__file__}))"
)


def test_launchable_env_python_is_a_conda_style_interpreter(tmp_path: Path, channel: Path) -> None:
    # Given a launchable env built the default (conda) way
    prefix = _install(
        tmp_path, channel, "conda-py", ["envshare-kernel-python", "isis_marker==4.3.0"], python_venv=True
    )

    # When its python describes itself and its pip reports its version
    facts = json.loads(_run(prefix / "bin" / "python", "-c", _PYTHON_FACTS))
    pip_version = _run(prefix / "bin" / "pip", "--version")
    pip3_version = _run(prefix / "bin" / "pip3", "--version")

    # Then the interpreter is not a venv: the env is its own base, with its stdlib inside
    assert facts["prefix"] == facts["base_prefix"] == str(prefix)
    assert facts["executable"] == str(prefix / "bin" / "python")
    assert facts["stdlib"] == str(prefix / "lib" / f"python{python_xy()}")
    assert not (prefix / "pyvenv.cfg").exists()
    assert not (prefix / "lib" / f"python{python_xy()}" / "EXTERNALLY-MANAGED").exists()
    # ... it imports ipykernel from the host and the marker installed into the env
    assert (facts["marker"], facts["marker_prefix"]) == ("isis4.3.0", str(prefix))
    assert facts["ipykernel"]
    # ... and bin/pip is a console script of that python, as conda's pip package installs it
    assert (prefix / "bin" / "pip").read_text().splitlines()[0] == f"#!{prefix}/bin/python"
    assert f"(python {python_xy()})" in pip_version
    assert pip3_version == pip_version


def test_pip_launcher_survives_a_prefix_too_long_for_a_shebang(tmp_path: Path, channel: Path) -> None:
    # Given a launchable env whose bin/python path is longer than the kernel reads of a #! line
    name = "long-" + "x" * max(1, 130 - len(str(tmp_path / "envs")))
    prefix = _install(tmp_path, channel, name, ["isis_marker==4.3.0"], python_venv=True)
    assert len(f"#!{prefix}/bin/python") > 127

    # When its pip runs
    script = (prefix / "bin" / "pip").read_text().splitlines()
    version = _run(prefix / "bin" / "pip", "--version")

    # Then it went through conda's sh trampoline to the env's python
    assert script[:2] == ["#!/bin/sh", f"'''exec' \"{prefix}/bin/python\" \"$0\" \"$@\" #'''"]
    assert f"(python {python_xy()})" in version


def test_venv_style_remains_available(tmp_path: Path, channel: Path) -> None:
    # Given a launchable env asking for the old venv interpreter
    prefix = _install(
        tmp_path, channel, "venv-py", ["isis_marker==4.3.0"], python_venv=True, python_style="venv"
    )

    # When its python describes itself
    code = (
        "import json, sys, isis_marker as m; print(json.dumps([sys.prefix, sys.base_prefix, m.ENV_MARKER]))"
    )
    env_prefix, base_prefix, marker = json.loads(_run(prefix / "bin" / "python", "-c", code))

    # Then it is a venv of the running interpreter's base that still sees the env's packages
    assert (env_prefix, marker) == (str(prefix), "isis4.3.0")
    assert base_prefix == sys.base_prefix != env_prefix
    assert (prefix / "pyvenv.cfg").exists()
    assert not (prefix / "bin" / "activate").exists()
    assert not (prefix / "bin" / "pip").exists()


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
