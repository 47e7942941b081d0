"""The shared installation the browser tests look at.

An in-sync environment (stamped with a lock made from its own records and a spec committed to git
with an https remote), a drifted one (a wheel pip-installed behind the lock's back), unlocked ones,
and unavailable ones (a dangling link, a corrupt kernel.json).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from rattler import PrefixRecord

from jupyter_envshare.lockfiles import package_ref, write_lock
from jupyter_envshare.sidecar import stamp
from jupyter_envshare.testing.layouts import (
    SharedInstallation,
    build_isis_installation,
    make_corrupt_kernel_json,
    make_dangling_symlink,
)
from jupyter_envshare.testing.wheels import make_wheel

GIT_REMOTE = "https://github.com/example-org/shared-envs.git"
IN_SYNC = "isis4.3.0"
DRIFTED = "isis4.2.0"
OVERLAY = "envshare_probe_pkg"

SPEC = """\
name: {env}
channels:
  - local
dependencies:
  - isis =={version}
  - ipykernel
"""


@dataclass
class UiSite:
    """The installation the browser tests look at, and the facts they check."""

    inst: SharedInstallation
    commit: str

    def prefix(self, env: str) -> Path:
        return self.inst.prefix(env)


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Env Builder", "-c", "user.email=builder@example.org", *args]
    done = subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _stamp_from_own_records(inst: SharedInstallation, env: str, repo: Path) -> None:
    """Lock ``env`` to exactly what is installed and stamp it with a spec committed in ``repo``."""
    prefix = inst.prefix(env)
    records = [package_ref(PrefixRecord.from_path(p)) for p in sorted((prefix / "conda-meta").glob("*.json"))]
    env_dir = repo / env
    env_dir.mkdir(parents=True)
    lock = env_dir / "conda-lock.yml"
    write_lock(records, "conda-lock", lock)
    spec = env_dir / "environment.yml"
    spec.write_text(SPEC.format(env=env, version=env.removeprefix("isis")))
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", f"{env}: spec and lock")
    stamp(prefix, spec=spec, lock=lock, git=True)


def build_ui_site(base: Path) -> UiSite:
    """Two launchable isis envs (one in sync, one drifted), unlocked ones, and broken ones."""
    inst = build_isis_installation(base, versions=("4.2.0", "4.3.0"), launchable=[DRIFTED, IN_SYNC])
    make_dangling_symlink(inst.envs_dir, "gone")
    make_corrupt_kernel_json(
        inst.envs_dir, "broken-json", channel_dir=inst.channel_dir, cache_dir=inst.cache_dir
    )
    repo = base / "site-envs"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "remote", "add", "origin", GIT_REMOTE)
    _stamp_from_own_records(inst, DRIFTED, repo)
    _stamp_from_own_records(inst, IN_SYNC, repo)
    # A pip install into the drifted env behind everybody's back, with the env's own pip.
    wheel = make_wheel(base / "wheels", name=OVERLAY)
    pip = [str(inst.prefix(DRIFTED) / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    return UiSite(inst=inst, commit=_git(repo, "rev-parse", "HEAD"))
