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


DUMP_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


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
    path = facts["env"]["PATH"].split(os.pathsep)
    # first the guard's shims (conda, pip...), then the environment's bin
    assert "/shims-" in path[0]
    assert path[1] == f"{prefix}/bin"
    assert facts["env"]["VIRTUAL_ENV"] is None
    # and imports the module only that environment has, not the ~/.local copy
    assert marker.strip() == "isis4.3.0"
    assert facts["env"]["PYTHONNOUSERSITE"] == "1"
    assert facts["user_site_enabled"] is False
    assert facts["user_site_on_path"] is False
    # and has a package cache of the user's own
    assert facts["env"]["CONDA_PKGS_DIRS"].startswith(str(jupyter_home))


def test_notebook_saved_under_nb_conda_kernels_opens_with_the_same_kernel(
    site: SharedInstallation, jupyter_home: Path
) -> None:
    # Given a notebook saved by a server running nb_conda_kernels, and `kernels sync` done here
    write_user_config(jupyter_home, envshare_config(site))
    assert cli_main(["kernels", "sync", "--dir", str(jupyter_home / "data" / "kernels")]) == 0
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "conda-env-isis4.3.0-py",
        "display_name": "Python [conda env:isis4.3.0]",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("import isis_marker; print(isis_marker.ENV_MARKER)")]
    # When it is executed with no kernel named, as `jupyter nbconvert --execute` does
    NotebookClient(nb, timeout=120, startup_timeout=120).execute()
    # Then the kernel from its own metadata ran, in the same environment
    assert nb.cells[0].outputs[0]["text"].strip() == "isis4.3.0"


def test_activation_gives_what_conda_activate_would(site: SharedInstallation, jupyter_home: Path) -> None:
    # Given the `activated` env (activate.d script, env_vars.d, conda-meta/state) and our manager
    write_user_config(jupyter_home, envshare_config(site))
    ksm = EnvShareKernelSpecManager()
    # When a kernel is started from it
    km = KernelManager(kernel_name="conda-env-activated-py", kernel_spec_manager=ksm)
    facts = json.loads(run_notebook("conda-env-activated-py", [PROBE], km=km)[0])
    # Then it sees what conda activation would have given it
    prefix = os.path.realpath(site.prefix("activated"))
    assert facts["env"]["ENVSHARE_ACTIVATED"] == "yes"
    assert f"{prefix}/opt/tool/bin" in facts["env"]["PATH"].split(os.pathsep)
    assert facts["env"]["ENVSHARE_SITE"] == "demo-site"
    assert facts["env"]["ENVSHARE_STATE_VAR"] == "from-state"


def test_activate_d_scripts_run_once_per_version(
    mutable_site: SharedInstallation, jupyter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an env whose activate.d script leaves a mark each time it runs
    counter = jupyter_home / "activations.log"
    monkeypatch.setenv("ENVSHARE_TEST_COUNTER", str(counter))
    script = mutable_site.prefix("isis4.3.0") / "etc" / "conda" / "activate.d" / "count.sh"
    script.parent.mkdir(parents=True)
    script.write_text('echo ran >> "$ENVSHARE_TEST_COUNTER"\nexport COUNTED_ENV="$CONDA_DEFAULT_ENV"\n')
    write_user_config(jupyter_home, envshare_config(mutable_site))
    ksm = EnvShareKernelSpecManager()

    def launch() -> dict[str, Any]:
        km = KernelManager(kernel_name="conda-env-isis4.3.0-py", kernel_spec_manager=ksm)
        facts: dict[str, Any] = json.loads(
            run_notebook(
                "conda-env-isis4.3.0-py",
                [DUMP_ENV],
                km=km,
            )[0]
        )
        return facts

    # When two kernels start
    first, second = launch(), launch()
    # Then both got the script's effect, but it ran once
    assert first["COUNTED_ENV"] == second["COUNTED_ENV"] == "isis4.3.0"
    assert counter.read_text().splitlines() == ["ran"]
    # When the script changes, the next launch runs it again
    script.write_text(script.read_text() + "export COUNTED_AGAIN=1\n")
    os.utime(script, ns=(script.stat().st_atime_ns, script.stat().st_mtime_ns + 10_000_000))
    third = launch()
    assert third["COUNTED_AGAIN"] == "1"
    assert counter.read_text().splitlines() == ["ran", "ran"]


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
