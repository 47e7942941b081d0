"""The demo: a realistic shared conda installation built offline, and JupyterLab started on it.

``python -m jupyter_envshare.demo --dir .demo`` builds (once) ``.demo/cpkgs/{v4.7,v4.8}/envs/...``
with ``current -> v4.8``, writes a config pointing ``c.EnvShare.env_roots`` at
``.demo/cpkgs/current/envs`` and a welcome notebook, then runs ``jupyter lab``. Arguments after
``--`` go to JupyterLab.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .config import current_user

BUILT_MARKER = ".built"


def build(directory: Path) -> Path:
    """Build the demo installation and its config under ``directory``; return the config dir."""
    from .testing.layouts import build_demo_installation

    directory = directory.resolve()
    marker = directory / BUILT_MARKER
    if not marker.exists():
        print(f"Building the demo shared installation in {directory}/cpkgs (offline, ~1 min)...")
        inst = build_demo_installation(directory)
        _publish(directory, inst.env_prefixes)
        marker.write_text(json.dumps({"envs": sorted(inst.env_prefixes)}) + "\n")
    config_dir = directory / "etc"
    config_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "EnvShare": {
            "env_roots": [str(directory / "cpkgs" / "current" / "envs")],
            "denied_envs": ["*-scratch"],
            # whoever runs the demo administers it, so the panel shows the request queue too
            "admin_users": [current_user()],
            "database_url": f"sqlite:///{directory / 'envshare.db'}",
            "contact": "the demo's research computing team",
        },
    }
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=2) + "\n")
    notebooks = directory / "notebooks"
    notebooks.mkdir(exist_ok=True)
    welcome = notebooks / "welcome.ipynb"
    if not welcome.exists():
        welcome.write_text(json.dumps(_welcome_notebook(), indent=1) + "\n")
    return config_dir


def _publish(directory: Path, prefixes: Mapping[str, Path]) -> None:
    """What an admin's build pipeline leaves behind: specs, locks and stamps, one env sealed, and
    one env drifted by a pip install behind everybody's back, so the panel has something to show."""
    import subprocess

    from rattler import PrefixRecord

    from .lockfiles import package_ref, write_lock
    from .seal import seal, seal_message
    from .sidecar import stamp
    from .testing.wheels import make_wheel

    specs = directory / "cpkgs" / "specs"
    for env in ("isis4.2.0", "isis4.3.0", "mlpy"):
        prefix = prefixes[env]
        records = [
            package_ref(PrefixRecord.from_path(p)) for p in sorted((prefix / "conda-meta").glob("*.json"))
        ]
        build = specs / env
        build.mkdir(parents=True, exist_ok=True)
        conda = sorted(r.name for r in records)
        (build / "environment.yml").write_text(
            f"name: {env}\nchannels:\n  - local\ndependencies:\n" + "".join(f"  - {n}\n" for n in conda)
        )
        write_lock(records, "conda-lock", build / "conda-lock.yml")
        stamp(prefix, spec=build / "environment.yml", lock=build / "conda-lock.yml", tool="conda")
    seal(prefixes["isis4.3.0"], seal_message("isis4.3.0", "the demo's research computing team"))
    wheel = make_wheel(directory / "wheels", name="quickfix", version="0.3")
    pip = prefixes["isis4.2.0"] / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", "--no-index", "--no-deps", str(wheel)], check=True)


def _welcome_notebook() -> dict[str, object]:
    def code(source: str) -> dict[str, object]:
        return {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": "conda-env-isis4.3.0-py",
                "display_name": "Python 3 [shared: isis4.3.0]",
                "language": "python",
            },
        },
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": (
                    "# Shared environments\n\nThis notebook runs in the read-only shared "
                    "environment `isis4.3.0`, launched by jupyter_envshare's provisioner. "
                    "Pick another one from *Kernel > Change Kernel*: every allowed environment "
                    "under `cpkgs/current/envs` is listed as `... [shared: NAME]`."
                ),
            },
            code("import os, sys\nprint(sys.prefix)\nprint(os.environ['CONDA_DEFAULT_ENV'])"),
            code("import isis_marker\nisis_marker.ENV_MARKER"),
            code("import site\nsite.ENABLE_USER_SITE  # False: ~/.local cannot shadow the env"),
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": (
                    "Shared environments are read-only. Try to install into this one: the install "
                    "guard stops the command, changes nothing, and says how to ask for the package "
                    "(or how to get a personal environment right now)."
                ),
            },
            code("%pip install polars"),
            code('%envshare request "polars>=1.0" --reason "faster joins for the survey data"'),
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Build the demo installation and run JupyterLab on it."""
    parser = argparse.ArgumentParser(prog="python -m jupyter_envshare.demo")
    parser.add_argument("--dir", default=".demo", help="where to build the demo (default .demo)")
    parser.add_argument("--build-only", action="store_true", help="build, do not start JupyterLab")
    parser.add_argument("--port", default="8888")
    parser.add_argument("lab_args", nargs="*", help="arguments for jupyter lab (after --)")
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    config_dir = build(directory)
    if args.build_only:
        print(f"Demo built in {directory.resolve()}")
        return
    os.environ["JUPYTER_CONFIG_DIR"] = str(config_dir)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={directory.resolve() / 'notebooks'}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
        "--ServerApp.open_browser=False",
        *args.lab_args,
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    print("Starting JupyterLab; open the URL with the token printed below.")
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
