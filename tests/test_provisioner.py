"""Real kernels started through the envshare provisioner, executed by nbclient as papermill would."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from jupyter_envshare.cli import main as cli_main
from jupyter_envshare.kernelspecs import EnvShareKernelSpecManager
from jupyter_envshare.spool import read_events
from jupyter_envshare.testing.layouts import SharedInstallation

from .conftest import envshare_config, write_user_config

pytestmark = pytest.mark.slow

PROBE = """
import json, os, site, sys
print(json.dumps({
    "prefix": sys.prefix,
    "executable": sys.executable,
    "user_site_enabled": site.ENABLE_USER_SITE,
    "user_site_on_path": site.getusersitepackages() in sys.path,
    "env": {k: os.environ.get(k) for k in (
        "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONNOUSERSITE", "CONDA_PKGS_DIRS",
        "ENVSHARE_ACTIVATED", "ENVSHARE_SITE", "ENVSHARE_STATE_VAR", "PATH", "VIRTUAL_ENV")},
}))
"""


def run_notebook(kernel_name: str, cells: list[str], km: KernelManager | None = None) -> list[Any]:
    """Execute cells in a fresh kernel; return the stdout text of each cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    client = NotebookClient(nb, kernel_name=kernel_name, km=km, timeout=120, startup_timeout=120)
    client.execute()
    return [
        "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout") for cell in nb.cells
    ]


def test_kernel_by_name_after_sync_runs_in_the_shared_env(
    site: SharedInstallation, jupyter_home: Path, tmp_path: Path
) -> None:
    # Given an admin config and `kernels sync` into the user's kernels dir (no server involved)
    write_user_config(jupyter_home, envshare_config(site, pkgs_dirs="{home}/.cache/envshare/{user}"))
    assert cli_main(["kernels", "sync", "--dir", str(jupyter_home / "data" / "kernels")]) == 0
    # and a ~/.local site-packages that would shadow the env's module
    user_site = Path(jupyter_home) / ".local" / "lib" / "python3.11" / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "isis_marker.py").write_text("ENV_MARKER = 'from ~/.local'\n")
    # When nbclient executes a notebook by kernel name, as papermill does
    probe, marker = run_notebook(
        "conda-env-isis4.3.0-py", [PROBE, "import isis_marker; print(isis_marker.ENV_MARKER)"]
    )
    facts = json.loads(probe)
    prefix = os.path.realpath(site.prefix("isis4.3.0"))
    # Then the kernel runs inside the shared environment, activated
    assert facts["prefix"] == prefix
    assert facts["env"]["CONDA_PREFIX"] == prefix
    assert facts["env"]["CONDA_DEFAULT_ENV"] == "isis4.3.0"
    assert facts["env"]["PATH"].split(os.pathsep)[0] == f"{prefix}/bin"
    assert facts["env"]["VIRTUAL_ENV"] is None
    # and imports the module only that environment has, not the ~/.local copy
    assert marker.strip() == "isis4.3.0"
    assert facts["env"]["PYTHONNOUSERSITE"] == "1"
    assert facts["user_site_enabled"] is False
    assert facts["user_site_on_path"] is False
    # and has a package cache of the user's own
    assert facts["env"]["CONDA_PKGS_DIRS"].startswith(str(jupyter_home))


def test_activate_d_scripts_run_once_and_are_replayed(site: SharedInstallation, jupyter_home: Path) -> None:
    # Given the `activated` env (activate.d script, env_vars.d, conda-meta/state) and our manager
    write_user_config(jupyter_home, envshare_config(site))
    ksm = EnvShareKernelSpecManager()
    counter = jupyter_home / "activations.log"
    os.environ["ENVSHARE_TEST_COUNTER"] = str(counter)
    try:
        # When two kernels are started from it
        results = []
        for _ in range(2):
            km = KernelManager(kernel_name="conda-env-activated-py", kernel_spec_manager=ksm)
            results.append(json.loads(run_notebook("conda-env-activated-py", [PROBE], km=km)[0]))
    finally:
        del os.environ["ENVSHARE_TEST_COUNTER"]
    prefix = os.path.realpath(site.prefix("activated"))
    for facts in results:
        # Then each sees what conda activation would have given it
        assert facts["env"]["ENVSHARE_ACTIVATED"] == "yes"
        assert f"{prefix}/opt/tool/bin" in facts["env"]["PATH"].split(os.pathsep)
        assert facts["env"]["ENVSHARE_SITE"] == "demo-site"
        assert facts["env"]["ENVSHARE_STATE_VAR"] == "from-state"
    # and the scripts ran once: the second launch replayed the cached result
    cached = list((jupyter_home / "runtime" / "envshare").glob("activation-*.json"))
    assert len(cached) == 1


def test_gone_environment_starts_an_explaining_kernel(
    mutable_site: SharedInstallation, jupyter_home: Path
) -> None:
    # Given a kernel that was listed, then its environment retired
    write_user_config(jupyter_home, envshare_config(mutable_site))
    ksm = EnvShareKernelSpecManager()
    assert "conda-env-isis4.3.0-py" in ksm.find_kernel_specs()
    (mutable_site.envs_dir / "isis4.3.0").rename(mutable_site.root / "retired")
    # When a notebook saved with it runs
    km = KernelManager(kernel_name="conda-env-isis4.3.0-py", kernel_spec_manager=ksm)
    with pytest.raises(CellExecutionError) as caught:
        run_notebook("conda-env-isis4.3.0-py", ["print('hello')"], km=km)
    # Then the error in the notebook says why, instead of a kernel dying silently
    assert "isis4.3.0" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_launches_are_recorded_in_the_user_spool(site: SharedInstallation, jupyter_home: Path) -> None:
    write_user_config(jupyter_home, envshare_config(site))
    ksm = EnvShareKernelSpecManager()
    km = KernelManager(kernel_name="conda-env-isis4.3.0-py", kernel_spec_manager=ksm)
    run_notebook("conda-env-isis4.3.0-py", ["1"], km=km)
    events = list(read_events(str(jupyter_home / "runtime" / "envshare")))
    launch = [e for e in events if e["kind"] == "launch"]
    assert len(launch) == 1
    assert launch[0]["env"] == "isis4.3.0"
    assert launch[0]["kernel"] == "python3"
    assert launch[0]["user"]
    assert launch[0]["host"]
    assert launch[0]["time"].endswith("+00:00")
