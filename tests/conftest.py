"""Fixtures: real shared conda installations built offline with py-rattler, real servers and kernels."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_envshare import discovery
from jupyter_envshare.testing.layouts import (
    SharedInstallation,
    build_isis_installation,
    make_corrupt_kernel_json,
    make_dangling_symlink,
    make_private_records,
)

pytest_plugins = ("pytest_jupyter.jupyter_server",)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# The broken environments every shared installation in these tests carries, so that every test
# also proves they never empty or break the kernel list.
BROKEN = ("broken-json", "private-records", "gone")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> SharedInstallation:
    """A read-only installation: 14 isis envs, rstats, nokernel, activated, and broken ones.

    Shared by the whole session: tests must not change it (use ``mutable_site`` for that).
    """
    base = tmp_path_factory.mktemp("site")
    inst = build_isis_installation(base, launchable=["isis4.3.0", "activated"])
    envs = inst.envs_dir
    make_corrupt_kernel_json(envs, "broken-json", channel_dir=inst.channel_dir, cache_dir=inst.cache_dir)
    make_private_records(envs, "private-records", channel_dir=inst.channel_dir, cache_dir=inst.cache_dir)
    make_dangling_symlink(envs, "gone")
    return inst


@pytest.fixture
def mutable_site(tmp_path: Path) -> SharedInstallation:
    """A small installation of this test's own, to change under a running server or engine."""
    return build_isis_installation(tmp_path, versions=("4.2.0", "4.3.0"), launchable=["isis4.3.0"])


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    # Engines are process-wide by design; tests must not see each other's caches.
    discovery._ENGINES.clear()
    yield
    discovery._ENGINES.clear()


def envshare_config(inst: SharedInstallation, **extra: Any) -> dict[str, Any]:
    """``c.EnvShare`` pointing at an installation through its ``current`` link."""
    return {"env_roots": [str(inst.current_envs_dir)], **extra}


@pytest.fixture
def jupyter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated Jupyter config/data/runtime dirs and HOME for code run outside a server."""
    home = tmp_path / "home"
    for sub in ("config", "data", "runtime"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    return home


def write_user_config(home: Path, envshare: dict[str, Any]) -> Path:
    """Write ``c.EnvShare`` into the user's jupyter_server_config.json, as an admin would."""
    path = home / "config" / "jupyter_server_config.json"
    path.write_text(json.dumps({"EnvShare": envshare}))
    return path


def artifact_dir(name: str) -> Path:
    """A directory under test-artifacts/ for files a person should look at."""
    path = ARTIFACTS / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def is_root() -> bool:
    """Whether permission bits are ignored for this process (tests of chmod 000 need a user)."""
    return os.geteuid() == 0


# The real PostgreSQL the store tests run against (tests/postgres.py).
pytest_plugins = (*pytest_plugins, "tests.postgres")
