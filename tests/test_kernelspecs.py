"""The kernelspec manager and `jupyter envshare kernels sync` on a real installation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from traitlets.config import Config

from jupyter_envshare.cli import main as cli_main
from jupyter_envshare.kernelspecs import OWNER_MARKER, EnvShareKernelSpecManager
from jupyter_envshare.testing.layouts import ISIS_VERSIONS, SharedInstallation

from .conftest import envshare_config, write_user_config


def manager(
    inst: SharedInstallation, kernel_dirs: list[str] | None = None, **extra: object
) -> EnvShareKernelSpecManager:
    config = Config({"EnvShare": envshare_config(inst, **extra)})
    ksm = EnvShareKernelSpecManager(config=config)
    if kernel_dirs is not None:
        ksm.kernel_dirs = kernel_dirs
    return ksm


def test_merges_native_and_shared_kernels_with_metadata(site: SharedInstallation, jupyter_home: Path) -> None:
    # Given the manager configured with the installation
    ksm = manager(site)
    # When it lists all specs
    specs = ksm.get_all_specs()
    # Then the native python3 kernel and every shared kernel are there
    assert "python3" in specs
    shared = [n for n in specs if n.startswith("conda-env-")]
    assert len([n for n in shared if n.startswith("conda-env-isis")]) == len(ISIS_VERSIONS)
    # and shared specs carry the provisioner and the envshare state
    spec = specs["conda-env-isis4.3.0-py"]["spec"]
    assert spec["display_name"] == "Python 3 [shared: isis4.3.0]"
    meta = spec["metadata"]
    assert meta["kernel_provisioner"] == {
        "provisioner_name": "envshare-provisioner",
        "config": {"env": "isis4.3.0", "kernel": "python3"},
    }
    state = meta["envshare"]
    assert state["env"] == "isis4.3.0"
    assert state["prefix"] == os.path.realpath(site.prefix("isis4.3.0"))
    assert state["status"] == "unlocked"
    assert isinstance(state["read_only"], bool)
    assert meta["conda_env_name"] == "isis4.3.0"
    assert meta["conda_env_path"] == state["prefix"]
    # and get_kernel_spec agrees with the listing, case-insensitively as Jupyter does
    kspec = ksm.get_kernel_spec("conda-env-ISIS4.3.0-py")
    assert kspec.argv[0] == str(Path(state["prefix"]) / "bin" / "python")
    assert kspec.metadata["envshare"]["env"] == "isis4.3.0"


def test_native_spec_pointing_into_shared_prefix_is_listed_once(
    site: SharedInstallation, tmp_path: Path, jupyter_home: Path
) -> None:
    # Given a native kernelspec (as `ipykernel install --prefix` would write) into isis4.3.0
    kernels = tmp_path / "kernels"
    native = kernels / "isis-native"
    native.mkdir(parents=True)
    python = site.current_envs_dir / "isis4.3.0" / "bin" / "python"
    (native / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "isis native",
                "language": "python",
            }
        )
    )
    other = kernels / "unrelated"
    other.mkdir()
    (other / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "unrelated",
                "language": "python",
            }
        )
    )
    ksm = manager(site, kernel_dirs=[str(kernels)])
    # When listed
    names = set(ksm.find_kernel_specs())
    # Then the duplicate is hidden behind the shared kernel and the unrelated one stays
    assert "isis-native" not in names
    assert "unrelated" in names
    assert "conda-env-isis4.3.0-py" in names


def test_listing_stays_fresh(mutable_site: SharedInstallation, jupyter_home: Path) -> None:
    ksm = manager(mutable_site)
    assert "conda-env-isis4.2.0-py" in ksm.get_all_specs()
    # When an env disappears between two listings
    (mutable_site.envs_dir / "isis4.2.0").rename(mutable_site.root / "isis4.2.0.retired")
    # Then the next listing no longer has it
    assert "conda-env-isis4.2.0-py" not in ksm.get_all_specs()


def test_gone_environment_gets_an_explaining_spec(
    mutable_site: SharedInstallation, jupyter_home: Path
) -> None:
    # Given a kernel that was listed, then its env removed
    ksm = manager(mutable_site)
    ksm.get_all_specs()
    (mutable_site.envs_dir / "isis4.2.0").rename(mutable_site.root / "isis4.2.0.retired")
    # When a notebook still asks for it by name
    spec = ksm.get_kernel_spec("conda-env-isis4.2.0-py")
    # Then it gets a spec that starts the fallback kernel through the provisioner
    assert spec.argv[1:3] == ["-m", "jupyter_envshare.fallback"]
    assert spec.metadata["kernel_provisioner"]["config"]["env"] == "isis4.2.0"
    # and a name nobody ever had is still unknown
    with pytest.raises(NoSuchKernel):
        ksm.get_kernel_spec("conda-env-never-existed-py")


def test_denied_environment_explains_itself(site: SharedInstallation, jupyter_home: Path) -> None:
    ksm = manager(site, denied_envs=["isis3.*"])
    assert "conda-env-isis3.6.0-py" not in ksm.find_kernel_specs()
    spec = ksm.get_kernel_spec("conda-env-isis3.6.0-py")
    assert "denied_envs" in spec.metadata["envshare"]["unavailable_reason"]


def test_kernels_sync_writes_specs_stock_tools_see(
    site: SharedInstallation, tmp_path: Path, jupyter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an admin config and a kernels dir with a kernelspec of the admin's own
    write_user_config(jupyter_home, envshare_config(site))
    target = jupyter_home / "data" / "kernels"
    own = target / "admins-own"
    own.mkdir(parents=True)
    (own / "kernel.json").write_text(json.dumps({"argv": ["x"], "display_name": "own", "language": "x"}))
    # When `jupyter envshare kernels sync --dir` runs
    assert cli_main(["kernels", "sync", "--dir", str(target), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    # Then stock `jupyter kernelspec list --json` sees the shared kernels with their metadata
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    specs = json.loads(listing.stdout)["kernelspecs"]
    assert "conda-env-isis4.3.0-py" in written
    assert (
        specs["conda-env-isis4.3.0-py"]["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"]
        == "envshare-provisioner"
    )
    assert "conda-env-rstats-r" in specs
    assert "admins-own" in specs
    # and the stock manager reads the same specs
    stock = KernelSpecManager().get_kernel_spec("conda-env-isis4.3.0-py")
    assert stock.display_name == "Python 3 [shared: isis4.3.0]"
    # When the installation loses an env (denied now) and sync runs again
    write_user_config(jupyter_home, envshare_config(site, denied_envs=["isis3.6.0"]))
    assert cli_main(["kernels", "sync", "--dir", str(target), "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)["removed"]
    # Then the stale spec it owned is removed and the admin's own is untouched
    assert removed == ["conda-env-isis3.6.0-py"]
    assert not (target / "conda-env-isis3.6.0-py").exists()
    assert (own / "kernel.json").exists()
    assert not (own / OWNER_MARKER).exists()


def test_cli_lists_kernels_and_problems(
    site: SharedInstallation, jupyter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_user_config(jupyter_home, envshare_config(site))
    code = cli_main(["kernels", "list", "--json"])
    report = json.loads(capsys.readouterr().out)
    # Broken envs make the exit code 1 so scripts notice; the report says what and why
    assert code == 1
    assert "conda-env-isis4.3.0-py" in report["kernels"]
    gone = next(e for e in report["envs"] if e["name"] == "gone")
    assert gone["usable"] is False
    assert "does not exist" in gone["problems"][0]["message"]
    # Human output has a table and a problems section
    cli_main(["kernels", "list"])
    text = capsys.readouterr().out
    assert "conda-env-isis4.3.0-py" in text
    assert "gone (broken)" in text


def _spec_dir(kernels: Path, name: str, argv: list[str], metadata: dict[str, object] | None = None) -> None:
    (kernels / name).mkdir(parents=True)
    spec = {"argv": argv, "display_name": name, "language": "python", "metadata": metadata or {}}
    (kernels / name / "kernel.json").write_text(json.dumps(spec))


def test_dedupe_keeps_python3_and_kernels_of_unusable_envs_but_hides_nb_conda_kernels_specs(
    site: SharedInstallation, tmp_path: Path, jupyter_home: Path
) -> None:
    # Given native specs: the server's python3 and a user's kernel into a denied env, both
    # pointing into shared envs, and two specs written by nb_conda_kernels for isis4.3.0
    kernels = tmp_path / "kernels"
    isis = str(site.current_envs_dir / "isis4.3.0")
    denied = str(site.current_envs_dir / "isis3.6.0")
    _spec_dir(
        kernels, "python3", [f"{isis}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    )
    _spec_dir(
        kernels,
        "my-old-isis",
        [f"{denied}/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    )
    _spec_dir(
        kernels,
        "conda-env-envs-isis4.3.0-py",
        [
            sys.executable,
            "-m",
            "nb_conda_kernels.runner",
            "/opt/conda",
            isis,
            "python",
            "-m",
            "ipykernel_launcher",
        ],
    )
    _spec_dir(kernels, "nbck-meta", ["python", "-m", "ipykernel_launcher"], {"conda_env_path": isis})
    ksm = manager(site, kernel_dirs=[str(kernels)], denied_envs=["isis3.6.0"])
    # When listed
    names = set(ksm.find_kernel_specs())
    # Then the default kernel and the user's own kernel stay, nb_conda_kernels' copies go
    assert "python3" in names
    assert "my-old-isis" in names
    assert "conda-env-envs-isis4.3.0-py" not in names
    assert "nbck-meta" not in names
    assert ksm.get_kernel_spec("python3").argv[0] == f"{isis}/bin/python"


def test_get_kernel_spec_returns_a_fresh_object(site: SharedInstallation, jupyter_home: Path) -> None:
    # The provisioner rewrites argv of the spec it is given; the next caller must not see that.
    ksm = manager(site)
    first = ksm.get_kernel_spec("conda-env-isis4.3.0-py")
    first.argv = ["changed"]
    assert ksm.get_kernel_spec("conda-env-isis4.3.0-py").argv[0].endswith("/bin/python")
