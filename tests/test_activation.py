"""Activation without a shell: what `conda activate` would set, from files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_envshare.activation import diff_env, replay, static_activation


def test_state_vars_win_over_package_env_vars(tmp_path: Path) -> None:
    # Given a package's env_vars.d and the env's own `conda env config vars` for the same name
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"SITE": "from-state"}}))
    (tmp_path / "etc" / "conda" / "env_vars.d").mkdir(parents=True)
    (tmp_path / "etc" / "conda" / "env_vars.d" / "pkg.json").write_text(
        json.dumps({"SITE": "from-package", "X": "1"})
    )
    # When activated from a server running in a venv
    base = {"PATH": f"/srv/venv/bin{os.pathsep}/usr/bin", "VIRTUAL_ENV": "/srv/venv", "PYTHONHOME": "/x"}
    env = static_activation(str(tmp_path), "e", base)
    # Then conda's precedence holds and the server's venv does not leak in
    assert env["SITE"] == "from-state"
    assert env["X"] == "1"
    assert env["PATH"].split(os.pathsep) == [f"{tmp_path}/bin", "/usr/bin"]
    assert "VIRTUAL_ENV" not in env
    assert "PYTHONHOME" not in env
    assert env["CONDA_PREFIX"] == str(tmp_path)
    assert env["CONDA_DEFAULT_ENV"] == "e"


def test_recorded_edits_replay_on_another_base() -> None:
    before = {"PATH": "/a:/b", "N": "1", "GONE": "x", "LIB": "/l"}
    after = {"PATH": "/env/tool:/a:/b", "N": "11", "LIB": "/l:/extra", "NEW": "v"}
    edits = diff_env(before, after)
    # Path lists grow; other values are set (a "1" -> "11" is no prepend)
    replayed = replay({"PATH": "/c", "N": "2", "GONE": "y", "LIB": "/m"}, edits)
    assert replayed == {"PATH": "/env/tool:/c", "N": "11", "LIB": "/m:/extra", "NEW": "v"}
