"""The guard's judgement on package commands: what is stopped, what passes, and odd input."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from envshare_guard import ipython as guard_ipython

# The guard is importable as `envshare_guard` (pytest's pythonpath), as it is inside kernels.
from envshare_guard.advice import MIME_TYPE, render
from envshare_guard.commands import (
    KNOWN_TOOLS,
    MAX_FILE_BYTES,
    USER_SITE,
    Target,
    analyze,
    analyze_argv,
    blocked,
    is_shared,
    package_names,
    read_regular,
    requestable,
)
from envshare_guard.commands import SHIM_MARKER as GUARD_SHIM_MARKER
from envshare_guard.context import GuardContext
from envshare_guard.ipython import Guard, SharedEnvironmentReadOnly, clean_reason, judged
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_envshare.arming import SHIM_MARKER, ensure_shims, shim_scripts

PREFIX = "/nfs/cpkgs/v1/envs/isis4.3.0"
TARGET = Target(
    env="isis4.3.0",
    prefix=PREFIX,
    roots=("/nfs/cpkgs/v1/envs",),
    home="/home/u",
    cwd="/home/u/work",
    # what the kernel's environment holds after activation
    variables={"CONDA_PREFIX": PREFIX, "HOME": "/home/u", "PATH": f"{PREFIX}/bin:/usr/bin:/bin"},
)

STOPPED = [
    ("conda install -y scipy", ["scipy"]),
    ("mamba install -c conda-forge 'numpy>=1.20,<2'", ["numpy>=1.20,<2"]),
    ("micromamba remove -y pandas", ["pandas"]),
    ("conda update --all", []),
    ("conda upgrade numpy", ["numpy"]),
    ("conda uninstall numpy", ["numpy"]),
    ("conda install -n isis4.3.0 scipy", ["scipy"]),
    ("conda install -n base scipy", ["scipy"]),
    (f"conda install -p {PREFIX} scipy", ["scipy"]),
    ("conda install --prefix=/nfs/cpkgs/v1/envs/other scipy", ["scipy"]),
    ("conda env update -f environment.yml", []),
    ("pip install polars", ["polars"]),
    ("pip3 install 'polars>=1.0'", ["polars>=1.0"]),
    ("pip uninstall -y six", ["six"]),
    ("pip install --user foo", ["foo"]),
    ("python -m pip install requests", ["requests"]),
    ("python3.11 -m pip install requests", ["requests"]),
    (f"{PREFIX}/bin/python -m pip install requests", ["requests"]),
    (f"{PREFIX}/bin/pip install requests", ["requests"]),
    ("uv pip install polars", ["polars"]),
    ("uv pip install --system polars", ["polars"]),
    ("pip list && pip install requests", ["requests"]),
    ("pip show x; conda install y", ["y"]),
    ("FOO=1 pip install x", ["x"]),
    ("sudo -H pip install x", ["x"]),
    ("timeout 60 pip install x", ["x"]),
    ("bash -c 'pip install evil'", ["evil"]),
    ("pip install \\\n  numpy \\\n  scipy", ["numpy", "scipy"]),
    ("if true; then pip install x; fi", ["x"]),
    ("x=$(pip install y)", ["y"]),
    ("conda run -n isis4.3.0 pip install x", ["x"]),
    ("pip install ünïcode-pkg", ["ünïcode-pkg"]),
    ("#!/bin/bash\n# set up\npip install x\n", ["x"]),
    # interpreter options before -m, and pip's own entry modules
    ("python -W ignore -m pip install x", ["x"]),
    ("python -X utf8 -m pip install x", ["x"]),
    ("python -I -W error::DeprecationWarning -X dev -m pip install x", ["x"]),
    ("python3 -Im pip install x", ["x"]),
    ("python -Wignore -mpip install x", ["x"]),
    ("python -m pip.__main__ install x", ["x"]),
    ("python -m pip._internal.cli.main install x", ["x"]),
    # variables in executable paths: from the chain, then the environment
    ("$CONDA_PREFIX/bin/pip install x", ["x"]),
    ("${CONDA_PREFIX}/bin/python -m pip install x", ["x"]),
    ("export P=/nfs/cpkgs/v1/envs/isis4.3.0; $P/bin/pip install x", ["x"]),
    ("E=/nfs/cpkgs/v1/envs; ${E}/isis4.3.0/bin/python -m pip install x", ["x"]),
    # pip ignores VIRTUAL_ENV; it honours PIP_* only when they reach its environment
    ("VIRTUAL_ENV=/tmp/v python -m pip install x", ["x"]),
    ("env VIRTUAL_ENV=/home/u/v pip install x", ["x"]),
    ("export VIRTUAL_ENV=/home/u/v; pip install x", ["x"]),
    ("PIP_USER=1 pip install x", ["x"]),
    ("export PIP_USER=yes && pip install x", ["x"]),
    ("PIP_TARGET=/tmp/lib; pip install x", ["x"]),  # a shell variable, not exported
    ("PIP_TARGET=/tmp/lib pip --isolated install x", ["x"]),
    ("PIP_TARGET=/tmp/lib pip uninstall -y x", ["x"]),  # uninstall has no target
    ("env -u PIP_TARGET pip install x", ["x"]),
    ("PIP_TARGET=/tmp/lib env -i pip install x", ["x"]),
    # pip's --root, general options with values, --python
    ("pip install --root / x", ["x"]),
    ("pip install --root=/ --prefix /nfs/cpkgs/v1/envs/isis4.3.0 x", ["x"]),
    ("pip --log-file /tmp/pip.log install x", ["x"]),
    ("pip --local-log /tmp/pip.log install x", ["x"]),
    ("pip -v --log /tmp/l --timeout 5 --retries 2 install x", ["x"]),
    (f"pip --python {PREFIX}/bin/python install x", ["x"]),
    # conda commands that rewrite the shared env or its configuration
    ("conda env create --force -n isis4.3.0 -f e.yml", []),
    ("conda env create --yes -n isis4.3.0 -f e.yml", []),
    (f"conda env create -p {PREFIX} -f e.yml", []),
    ("conda env config vars set X=1", []),
    ("conda env config vars unset X -n isis4.3.0", []),
    ("conda config --env --set channel_priority strict", []),
    ("conda config --env --add channels conda-forge", []),
    ("conda config --system --set auto_update_conda false", []),
    ("conda rename -n isis4.3.0 mine", []),
    ("conda create -p /nfs/cpkgs/v1/envs/new python", ["python"]),
    ("conda install -p /nfs/cpkgs/v1 scipy", ["scipy"]),  # the installation's base
    ("conda activate mine && conda deactivate && conda install scipy", ["scipy"]),
    # activation scripts of the shared installation
    ("source /nfs/cpkgs/v1/bin/activate isis4.3.0 && pip install x", ["x"]),
    ("source /nfs/cpkgs/v1/bin/activate && pip install x", ["x"]),
    (". /nfs/cpkgs/v1/bin/activate base; uv pip install x", ["x"]),
    # the working directory moves with cd
    ("cd /nfs/cpkgs/v1/envs/isis4.3.0/lib && pip install --target . x", ["x"]),
    # here-documents, comments and redirections do not hide commands
    ("cat <<EOF\nhello\nEOF\npip install x", ["x"]),
    ("cat <<'EOF' | sh\nok\nEOF\nconda install y", ["y"]),
    ("# don't do this\npip install x", ["x"]),
    ("pip install x 2>/dev/null", ["x"]),
    ("pip install x 2>&1 | tee log", ["x"]),
    ("pip install x >/dev/null 2>&1 &", ["x"]),
    # pip takes unambiguous prefixes of its long options (optparse): before the subcommand, of
    # its general options only
    ("PIP_TARGET=/tmp/lib pip --isol install x", ["x"]),
    ("PIP_TARGET=/tmp/lib pip --i install x", ["x"]),
    ("pip --pro http://proxy:3128 install numpy", ["numpy"]),
    ("pip --ex i install numpy", ["numpy"]),
    (f"~/venv/bin/pip --pyth {PREFIX}/bin/python install numpy", ["numpy"]),
    # and an option pip does not know before it cannot hide the install
    ("pip --frobnicate value install numpy", ["numpy"]),
    ("pip install --no-use x", ["x"]),
    ("pip install --us x", ["x"]),
    ("pip install --index https://example.org/simple x", ["x"]),
    ("pip install --upl 2025-01-01 x", ["x"]),
    # wrappers with options that take values
    ("sudo -u root pip install x", ["x"]),
    ("env -S 'pip install x'", ["x"]),
    ("nice -n 5 timeout -s KILL 60 pip install x", ["x"]),
]

PASSED = [
    "conda list",
    "conda info --envs",
    "conda search scipy",
    "conda env export",
    "conda config --show",
    "conda install --dry-run scipy",
    "conda install -p ~/envs/mine scipy",
    "conda install -n mine scipy",
    "conda create -n mine python=3.11 scipy",
    "conda create -p ~/envs/mine scipy",
    "conda activate mine && conda install scipy",
    "conda run -p ~/envs/mine pip install x",
    "pip list",
    "pip show numpy",
    "pip freeze",
    "pip download x -d /tmp/wheels",
    "pip install --target /tmp/lib x",
    "pip install -t/tmp/lib x",
    "pip install --prefix ~/.local/isis x",
    "pip install --dry-run x",
    "pip install --dry x",
    "pip install --targ /tmp/lib x",
    "pip install --targe=/tmp/lib x",
    "pip install --prefi ~/.local/isis x",  # (--pref could be --prefer-binary too)
    "pip --pyth ~/venv/bin/python install x",
    "pip install --root-u=ignore --root /tmp/r x",
    "~/venv/bin/pip install x",
    "/home/u/venv/bin/python -m pip install x",
    "source ~/venv/bin/activate && pip install x",
    ". ~/venv/bin/activate; python -m pip install x",
    "VIRTUAL_ENV=/home/u/v uv pip install x",
    "export VIRTUAL_ENV=/tmp/v; uv pip install x",
    "CONDA_PREFIX=/home/u/envs/mine conda install x",
    "export CONDA_PREFIX=/home/u/envs/mine && mamba install x",
    "PIP_TARGET=/tmp/lib pip install x",
    "export PIP_TARGET=/tmp/lib; pip install x",
    "env PIP_PREFIX=~/.local/isis pip install x",
    "pip install --root /tmp/r x",
    "pip --python ~/venv/bin/python install x",
    "pip --python=/home/u/venv install x",
    "PIP_PYTHON=~/venv/bin/python pip install x",
    "pip --log-file /tmp/pip.log list",
    "pip --local-log /tmp/pip.log install --target /tmp/lib x",
    "$HOME/venv/bin/pip install x",
    "${HOME}/venv/bin/python -m pip install x",
    "python -W ignore script.py",
    "python -X utf8 -c 'import pip'",
    "python -Wignore -I some_script.py install x",
    "conda env create -n mine -f e.yml",
    "conda env create -f e.yml",
    "conda env config vars list",
    "conda config --set channel_priority strict",
    "conda config --env --show",
    "conda config --get channels",
    "source /nfs/cpkgs/v1/bin/activate ~/envs/mine && pip install x",
    "cd ~/work && pip install --target lib x",
    "cat <<EOF\npip install x\nEOF",
    "cat <<-'EOF'\n\tpip install x\n\tEOF\necho done",
    "command -v pip",
    "pip list 2>/dev/null",
    "uv pip install --python ~/venv/bin/python polars",
    "uv add polars",
    "uv pip list",
    "echo 'pip install x'",
    "echo pip install x",
    "python -c 'import pip'",
    "ls -la | grep pip",
    "",
    "   ",
    "pip",
    "conda",
]


def test_the_guard_knows_every_long_option_of_this_pip() -> None:
    """A prefix of a long option means that option only if the guard knows all of pip's options."""
    from envshare_guard.commands import (
        PIP_GENERAL_LONG,
        PIP_GENERAL_VALUE_OPTIONS,
        PIP_SUBCOMMAND_LONG,
        PIP_VALUE_OPTIONS,
    )
    from pip._internal.cli.main_parser import create_main_parser
    from pip._internal.commands import create_command

    parsers = {"": (create_main_parser(), PIP_GENERAL_LONG, PIP_GENERAL_VALUE_OPTIONS)}
    for command in ("install", "uninstall"):
        parsers[command] = (create_command(command).parser, PIP_SUBCOMMAND_LONG[command], PIP_VALUE_OPTIONS)
    for command, (parser, known, values) in parsers.items():
        takes_value = {name: option.takes_value() for name, option in parser._long_opt.items()}
        # Then each is known where pip takes it (before the subcommand: the general ones only)
        assert set(takes_value) <= known, command
        # and known as taking a value or not, as this pip has it
        assert {n for n, v in takes_value.items() if v} <= values, command
        assert not {n for n, v in takes_value.items() if not v} & values, command


@pytest.mark.parametrize(("command", "specs"), STOPPED)
def test_commands_aimed_at_the_shared_env_are_stopped(command: str, specs: list[str]) -> None:
    verdicts = blocked(analyze(command, TARGET))
    assert verdicts, f"{command!r} should be stopped"
    assert [s for v in verdicts for s in v.specs] == specs


@pytest.mark.parametrize("command", PASSED)
def test_read_only_and_elsewhere_commands_pass(command: str) -> None:
    assert blocked(analyze(command, TARGET)) == []


def test_requirement_files_are_read_for_specs(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("# deps\npolars>=1.0\n-e ./local\nrequests  # http\n")
    target = Target(env="e", prefix=PREFIX, roots=(), home="/home/u", cwd=str(tmp_path))
    verdicts = blocked(analyze("pip install -r req.txt", target))
    assert verdicts[0].specs == ["polars>=1.0", "requests"]


def test_shim_argv_is_judged_like_a_command_line() -> None:
    assert blocked(analyze_argv(["pip", "install", "polars"], TARGET))
    assert not blocked(analyze_argv(["pip", "install", "--target", "/tmp/x", "polars"], TARGET))
    assert not blocked(analyze_argv(["conda", "list"], TARGET))


def test_requestable_specs_and_package_names() -> None:
    specs = ["polars>=1.0", "conda-forge::scipy=1.11", "./local.whl", "git+https://x/y.git", "$PKG", "Numpy"]
    assert requestable(specs) == ["polars>=1.0", "conda-forge::scipy=1.11", "Numpy"]
    assert package_names(specs) == ["polars", "scipy", "numpy"]


def test_advice_bundle_escapes_user_text() -> None:
    # Given a command full of Markdown and HTML
    context = GuardContext(env="isis4.3.0", prefix=PREFIX, contact="<b>ops</b> *team*", request_url="/r")
    command = "pip install polars '<script>alert(1)</script>' `rm -rf ~`"
    verdicts = blocked(analyze(command, TARGET))
    # When rendered
    bundle = render(context, verdicts, command)
    # Then the Markdown cannot be broken out of and the payload carries the parsed specs
    markdown = bundle["text/markdown"]
    assert "<b>" not in markdown
    assert "\\<b\\>ops\\</b\\>" in markdown
    assert "`pip install polars '<script>alert(1)</script>' 'rm -rf ~'`" in markdown  # one code span
    assert bundle[MIME_TYPE]["specs"] == ["polars"]
    assert bundle[MIME_TYPE]["env"] == "isis4.3.0"
    assert bundle[MIME_TYPE]["request_url"] == "/r"
    assert "%envshare request polars" in bundle["text/plain"]


def test_admin_template_is_used_and_a_broken_one_falls_back() -> None:
    verdicts = blocked(analyze("pip install polars", TARGET))
    good = GuardContext(env="e", prefix=PREFIX, template="Ask {contact} for {packages} in {env}.")
    assert (
        render(good, verdicts, "pip install polars")["text/markdown"]
        == "Ask the admins of this hub for `polars` in e."
    )
    broken = GuardContext(env="e", prefix=PREFIX, template="{nonsense}")
    assert "shared, read-only" in render(broken, verdicts, "pip install polars")["text/markdown"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_judged_without_error(text: str) -> None:
    for verdict in analyze(text, TARGET):
        assert isinstance(verdict.blocked, bool)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "pip",
                "install",
                "conda",
                "-n",
                "-p",
                "--target",
                "&&",
                ";",
                "|",
                "'",
                '"',
                "\\\n",
                "$X",
                "{",
                "-m",
                "python",
                "uv",
                "x",
                "-W",
                "--root",
                "/",
                "PIP_TARGET=/tmp",
                "VIRTUAL_ENV=/tmp/v",
                "$CONDA_PREFIX/bin/pip",
                "2>/dev/null",
                "<<EOF",
                "EOF",
                "\n",
                "source",
                "/nfs/cpkgs/v1/bin/activate",
                "export",
            ]
        ),
        max_size=30,
    )
)
def test_shell_like_word_soup_is_judged_without_error(words: list[str]) -> None:
    for verdict in analyze(" ".join(words), TARGET):
        # every verdict names a tool the guard knows, and only a shared target stops a command
        assert verdict.tool in KNOWN_TOOLS or verdict.tool.startswith("conda-")
        if verdict.blocked:
            assert verdict.target == USER_SITE or is_shared(verdict.target, TARGET), verdict
        assert verdict.entry


def test_very_long_command_is_judged() -> None:
    command = "pip install " + " ".join(f"pkg{i}" for i in range(20000))
    verdicts = blocked(analyze(command, TARGET))
    assert verdicts
    assert len(render(GuardContext(env="e", prefix=PREFIX), verdicts, command)["text/plain"]) < 200000


def test_guard_code_runs_on_python_3_8() -> None:
    # The guard runs inside shared environments of any age; vermin finds syntax and stdlib use
    # newer than the minimum.
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    assert vermin is not None, "vermin is part of the test extras"
    guard = Path(__file__).resolve().parent.parent / "jupyter_envshare" / "guard" / "envshare_guard"
    done = subprocess.run(
        [vermin, "--no-tips", "--violations", "--eval-annotations", "-t=3.8-", str(guard)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- protected places --------------------------------------------------------------------------------


def test_protected_places_count_in_every_spelling(tmp_path: Path) -> None:
    # Given an installation reached through a `current` link, and the roots the provisioner passes:
    # both spellings of the envs root, the installation's base, an explicit env prefix
    generation = tmp_path / "cpkgs" / "v1"
    (generation / "envs" / "isis4.3.0" / "conda-meta").mkdir(parents=True)
    (generation / "envs" / "other" / "conda-meta").mkdir(parents=True)
    (tmp_path / "cpkgs" / "current").symlink_to(generation)
    current = tmp_path / "cpkgs" / "current"
    explicit = tmp_path / "opt" / "special"
    explicit.mkdir(parents=True)
    target = Target(
        env="isis4.3.0",
        prefix=str(current / "envs" / "isis4.3.0"),
        roots=(str(current / "envs"), str(generation / "envs"), str(generation), str(explicit)),
        home=str(tmp_path / "home"),
        cwd=str(tmp_path / "home"),
    )
    # Then every spelling of every protected place is shared
    for path in [
        current / "envs" / "isis4.3.0" / "lib",
        generation / "envs" / "isis4.3.0",
        current / "envs" / "other",
        generation / "envs" / "not-yet",
        current,  # the base, through the link
        generation / "pkgs",
        explicit / "lib" / "python3.11" / "site-packages",
    ]:
        assert is_shared(str(path), target), path
    assert not is_shared(str(tmp_path / "home" / "envs" / "mine"), target)
    assert not is_shared(str(tmp_path / "cpkgs" / "v2"), target)
    # and commands aimed at them are stopped
    for command in [
        f"conda install -p {current} scipy",  # the base prefix
        "conda install -n other scipy",  # another configured environment
        f"{generation}/envs/other/bin/pip install x",
        f"pip install --target {explicit}/lib x",
        f"source {current}/bin/activate other && pip install x",
        f"source {generation}/bin/activate isis4.3.0 && python -m pip install x",
    ]:
        assert blocked(analyze(command, target)), command
    assert not blocked(analyze(f"source {current}/bin/activate ~/envs/mine && pip install x", target))


def test_a_place_above_the_home_never_makes_the_home_shared(tmp_path: Path) -> None:
    # A root configured too high (its base is /home) must not stop installs into the user's home.
    home = tmp_path / "home" / "u"
    target = Target(
        env="e",
        prefix=str(tmp_path / "home" / "envs" / "e"),
        roots=(str(tmp_path / "home" / "envs"),),
        home=str(home),
        cwd=str(home),
    )
    assert not blocked(analyze("pip install --target ~/lib x", target))
    assert blocked(analyze(f"pip install --target {tmp_path}/home/shared-lib x", target))
    assert blocked(analyze("pip install x", target))


def test_a_path_set_in_the_chain_decides_which_pip_runs(tmp_path: Path) -> None:
    shared, venv = tmp_path / "site" / "envs" / "shared", tmp_path / "home" / "venv"
    for prefix in (shared, venv):
        (prefix / "bin").mkdir(parents=True)
        for tool in ("pip", "python"):
            (prefix / "bin" / tool).write_text("#!/bin/sh\n")
            (prefix / "bin" / tool).chmod(0o755)
    target = Target(
        env="shared",
        prefix=str(shared),
        roots=(str(shared.parent),),
        home=str(tmp_path / "home"),
        cwd=str(tmp_path),
        variables={"PATH": f"{shared}/bin:/usr/bin:/bin", "CONDA_PREFIX": str(shared)},
    )
    assert blocked(analyze("pip install x", target))
    assert not blocked(analyze(f"export PATH={venv}/bin:$PATH; pip install x", target))
    assert not blocked(analyze(f"PATH={venv}/bin:$PATH python -m pip install x", target))
    assert blocked(analyze(f"PATH=$PATH:{venv}/bin pip install x", target))  # the env's pip comes first
    assert blocked(analyze(f"export PATH={tmp_path}/nothing:$PATH; pip install x", target))
    assert blocked(
        analyze(f"export PATH={venv}/bin:$PATH; source {shared}/bin/activate; pip install x", target)
    )


def test_conda_env_files_name_their_environment(tmp_path: Path) -> None:
    (tmp_path / "shared.yml").write_text(
        "name: isis4.3.0\ndependencies:\n  - scipy\n  - pip:\n    - polars\n"
    )
    (tmp_path / "mine.yml").write_text("name: mine\ndependencies:\n  - scipy\n")
    target = Target(env="isis4.3.0", prefix=PREFIX, roots=TARGET.roots, home="/home/u", cwd=str(tmp_path))
    stopped = blocked(analyze("conda env update -f shared.yml", target))
    assert stopped
    assert stopped[0].specs == ["scipy", "polars"]
    assert blocked(analyze("conda env create -f shared.yml --yes", target))
    assert not blocked(analyze("conda env create -f mine.yml", target))
    assert not blocked(analyze("conda env update -f mine.yml", target))


# -- files the guard reads -------------------------------------------------------------------------


def test_requirement_files_that_could_block_are_never_read(tmp_path: Path) -> None:
    # A FIFO (or /dev/stdin, a terminal) would block the kernel on open or read.
    fifo = tmp_path / "req.fifo"
    os.mkfifo(fifo)
    target = Target(env="e", prefix=PREFIX, roots=(), home="/home/u", cwd=str(tmp_path))
    results: list[list[str]] = []

    def judge() -> None:
        for command in (
            "pip install -r req.fifo",
            "pip install -r /dev/stdin",
            "conda env update -f req.fifo",
        ):
            results.append([s for v in blocked(analyze(command, target)) for s in v.specs])

    worker = threading.Thread(target=judge, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the guard blocked on a FIFO or stdin"
    assert results == [[], [], []]


def test_requirement_files_are_read_up_to_a_bound(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("polars\n" + "x" * (2 * MAX_FILE_BYTES) + "\nrequests\n")
    target = Target(env="e", prefix=PREFIX, roots=(), home="/home/u", cwd=str(tmp_path))
    assert blocked(analyze("pip install -r big.txt", target))[0].specs[0] == "polars"
    assert read_regular(str(tmp_path / "big.txt")) is not None
    assert len(read_regular(str(tmp_path / "big.txt")) or "") == MAX_FILE_BYTES


# -- the PATH shims ------------------------------------------------------------------------------------


def _real_tool(directory: Path, name: str = "pip") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(f'#!/bin/sh\necho real {name} "$@"\n')
    tool.chmod(0o755)
    return directory


def test_a_shim_without_guard_settings_runs_the_real_tool(tmp_path: Path) -> None:
    # Given the shims and a real pip after them, and no ENVSHARE_GUARD (a bare environment)
    shims = ensure_shims(tmp_path / "spool")
    real = _real_tool(tmp_path / "real")
    env = {"PATH": f"{shims}{os.pathsep}{real}"}
    # When pip is run through its shim, from any directory
    done = subprocess.run(
        [str(shims / "pip"), "list"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=20
    )
    # Then the real pip runs
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "real pip list"


def test_a_shim_with_no_real_tool_fails_fast_instead_of_looping(tmp_path: Path) -> None:
    shims = ensure_shims(tmp_path / "spool")
    copy = tmp_path / "other-shims"  # another copy of the shims on PATH (an older digest)
    copy.mkdir()
    shutil.copy2(shims / "pip", copy / "pip")
    for env in (
        {"PATH": str(shims)},
        {"PATH": f"{shims}{os.pathsep}{copy}"},
        {"PATH": f"{copy}{os.pathsep}{shims}", "ENVSHARE_GUARD": "not json"},
    ):
        started = time.monotonic()
        done = subprocess.run(
            [str(shims / "pip"), "list"], env=env, cwd=shims, capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 127, (env, done.stderr)
        assert "command not found" in done.stderr
        assert time.monotonic() - started < 10
    # and a shim run by a relative name (no slash in $0) finds its own directory too
    done = subprocess.run(
        ["/bin/sh", "pip", "list"],
        env={"PATH": f"{shims}{os.pathsep}{_real_tool(tmp_path / 'real')}"},
        cwd=shims,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.stdout.strip() == "real pip list", done.stderr


def test_shims_are_private_and_rewritten_when_tampered_with(tmp_path: Path) -> None:
    # Given fresh shims
    shims = ensure_shims(tmp_path / "spool")
    expected = shim_scripts()
    assert stat.S_IMODE(shims.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert all((shims / tool).read_text() == text for tool, text in expected.items())
    assert all(SHIM_MARKER in text for text in expected.values())
    assert SHIM_MARKER == GUARD_SHIM_MARKER
    # When one is changed, one made writable by others, one replaced by a symlink, the dir opened up
    (shims / "pip").write_text("#!/bin/sh\necho evil\n")
    (shims / "conda").chmod(0o777)
    (shims / "uv").unlink()
    (shims / "uv").symlink_to("/bin/true")
    shims.chmod(0o777)
    # Then the next launch puts them back
    assert ensure_shims(tmp_path / "spool") == shims
    assert stat.S_IMODE(shims.stat().st_mode) == 0o700
    for tool, text in expected.items():
        info = (shims / tool).lstat()
        assert stat.S_ISREG(info.st_mode), tool
        assert not info.st_mode & 0o022, tool
        assert (shims / tool).read_text() == text


def test_shims_owned_by_someone_else_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shims = ensure_shims(tmp_path / "spool")
    if os.getuid() == 0:
        os.chown(shims / "pip", 65534, 65534)
        with pytest.raises(OSError, match="belongs to uid 65534"):
            ensure_shims(tmp_path / "spool")
        os.chown(shims / "pip", 0, 0)
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)  # as seen by another user
    with pytest.raises(OSError, match="belongs to uid"):
        ensure_shims(tmp_path / "spool")


# -- %envshare request ---------------------------------------------------------------------------------


def test_envshare_request_validates_specs_and_cleans_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = GuardContext(env="isis4.3.0", prefix=PREFIX, spool=str(tmp_path), user="u")
    guard = Guard(shell=None, context=context)
    guard.envshare_magic("request ./evil.whl 'git+https://x/y.git' polars --reason 'need it'")
    assert "not: './evil.whl', 'git+https://x/y.git'" in capsys.readouterr().err
    assert not (tmp_path / "events.jsonl").exists()
    guard.envshare_magic("request 'polars>=1.0' --reason 'faster\x1b[31m joins\x00\r\nreally\tyes <b>&</b>'")
    assert "Recorded your request for polars>=1.0" in capsys.readouterr().out
    event = json.loads((tmp_path / "events.jsonl").read_text())
    assert event["specs"] == ["polars>=1.0"]
    assert event["reason"] == "faster[31m joins\nreally\tyes <b>&</b>"
    assert clean_reason("\x07\x1b") == ""


# -- the audit hook --------------------------------------------------------------------------------------


@pytest.fixture
def audit_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Guard, list[dict[str, Any]]]:
    """A guard (no shell) whose audit hook judgement is exercised directly; published bundles kept."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "pip").write_text("#!/bin/sh\n# jupyter_envshare guard shim for pip\n")
    (shims / "pip").chmod(0o755)
    context = GuardContext(
        env="isis4.3.0",
        prefix=PREFIX,
        roots=list(TARGET.roots),
        spool=str(tmp_path / "spool"),
        shims=str(shims),
    )
    guard = Guard(shell=None, context=context)
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(guard, "_publish", published.append)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{PREFIX}/bin{os.pathsep}/usr/bin")
    monkeypatch.setenv("CONDA_PREFIX", PREFIX)
    return guard, published


def _attempts(guard: Guard) -> list[dict[str, Any]]:
    spool = Path(guard.context.spool) / "events.jsonl"
    return [json.loads(line) for line in spool.read_text().splitlines()] if spool.exists() else []


def test_audit_hook_stops_spawns_that_no_shim_sees(audit_guard: tuple[Guard, list[dict[str, Any]]]) -> None:
    guard, published = audit_guard
    python = f"{PREFIX}/bin/python"
    events = [
        ("subprocess.Popen", (python, [python, "-m", "pip", "install", "polars"], None, None)),
        ("subprocess.Popen", (None, [f"{PREFIX}/bin/pip".encode(), b"install", b"polars"], None, None)),
        ("subprocess.Popen", ("/bin/sh", ["/bin/sh", "-c", "python -m pip install polars"], None, None)),
        ("os.system", ("python -m pip install polars",)),
        ("os.system", (b"$CONDA_PREFIX/bin/pip install polars",)),
        ("os.posix_spawn", (python, [python, "-Im", "pip", "install", "polars"], dict(os.environ))),
        ("os.exec", (python, (python, "-m", "pip", "install", "polars"), None)),
    ]
    for event, args in events:
        with pytest.raises(SharedEnvironmentReadOnly) as raised:
            guard.audit(event, args)
        assert isinstance(raised.value, PermissionError)
        assert "shared, read-only" in str(raised.value)
    assert len(published) == len(events)
    assert all(bundle[MIME_TYPE]["specs"] == ["polars"] for bundle in published)
    assert [e["via"] for e in _attempts(guard)] == ["spawn"] * len(events)


def test_audit_hook_lets_the_rest_through(audit_guard: tuple[Guard, list[dict[str, Any]]]) -> None:
    guard, published = audit_guard
    python = f"{PREFIX}/bin/python"
    allowed = [
        ("subprocess.Popen", (python, [python, "-m", "pip", "list"], None, None)),
        (
            "subprocess.Popen",
            (python, [python, "-m", "pip", "install", "--target", "/tmp/x", "y"], None, None),
        ),
        ("subprocess.Popen", (python, [python, "-m", "pip", "install", "y"], None, {"PIP_TARGET": "/tmp/x"})),
        ("subprocess.Popen", ("/usr/bin/git", ["git", "status"], None, None)),
        ("os.system", ("ls -la | grep pip",)),
        # bare `pip` reaches the shim, which judges (and counts) it itself
        ("subprocess.Popen", ("pip", ["pip", "install", "polars"], None, None)),
        ("os.system", ("pip install polars 2>/dev/null",)),
        ("subprocess.Popen", ("/bin/sh", ["/bin/sh", "-c", "pip install polars"], None, None)),
    ]
    for event, args in allowed:
        guard.audit(event, args)
    assert published == []
    assert _attempts(guard) == []
    # a Popen judged once is not judged again by the posix_spawn that carries it out
    guard.context.mode = "warn"
    install = [python, "-m", "pip", "install", "polars"]
    guard.audit("subprocess.Popen", (python, install, None, None))
    guard.audit("os.posix_spawn", (python, install, dict(os.environ)))
    assert len(published) == 1
    # but a stopped Popen does not let the same argv through another door
    guard.context.mode = "advise"
    with pytest.raises(SharedEnvironmentReadOnly):
        guard.audit("subprocess.Popen", (python, install, None, None))
    with pytest.raises(SharedEnvironmentReadOnly):
        guard.audit("os.posix_spawn", (python, install, dict(os.environ)))


def test_audit_hook_in_warn_mode_advises_once_and_lets_it_run(
    audit_guard: tuple[Guard, list[dict[str, Any]]],
) -> None:
    guard, published = audit_guard
    guard.context.mode = "warn"
    guard.audit("os.system", ("python -m pip install polars",))
    assert len(published) == 1
    assert [e["mode"] for e in _attempts(guard)] == ["warn"]


def test_audit_hook_is_silent_when_disarmed_or_inside_a_judged_command(
    audit_guard: tuple[Guard, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    guard, published = audit_guard
    command = ("python -m pip install polars",)
    guard_ipython._audit_hook("os.system", command, _audited=[None])  # disarmed: a no-op
    guard_ipython._audit_hook("open", ("/x", "r", 0), _audited=[guard])  # other events: a no-op
    with judged(warned=True):
        assert os.environ["ENVSHARE_GUARD_JUDGED"] == "warn"
        guard_ipython._audit_hook("os.system", command, _audited=[guard])
    assert "ENVSHARE_GUARD_JUDGED" not in os.environ
    assert published == []
    with pytest.raises(SharedEnvironmentReadOnly):
        guard_ipython._audit_hook("os.system", command, _audited=[guard])


def test_scripts_run_by_a_shell_are_read(tmp_path: Path) -> None:
    # Given scripts in the working directory: one installs with pip's module, one points pip
    # elsewhere, one sources itself
    (tmp_path / "setup.sh").write_text("#!/bin/sh\nset -e\npython -m pip install polars\n")
    (tmp_path / "elsewhere.sh").write_text("export PIP_TARGET=/tmp/lib\n")
    (tmp_path / "loop.sh").write_text(". ./loop.sh\npip install x\n")
    here = dataclasses.replace(TARGET, cwd=str(tmp_path))

    def stopped(command: str) -> list[list[str]]:
        return [v.specs for v in blocked(analyze(command, here))]

    # Then what a script run by a shell does is judged as if typed in the cell
    assert stopped("bash setup.sh") == [["polars"]]
    assert stopped("sh -e ./setup.sh arg") == [["polars"]]
    assert stopped(f"bash {tmp_path}/setup.sh") == [["polars"]]
    assert stopped("bash -eo pipefail setup.sh") == [["polars"]]
    assert stopped("sh -euo pipefail ./setup.sh") == [["polars"]]
    assert stopped("source setup.sh") == [["polars"]]
    # and what a script changes is never taken to point pip elsewhere: a child shell's changes do not
    # come back, and a sourced script's may not happen
    assert stopped("bash elsewhere.sh && pip install x") == [["x"]]
    assert stopped("source elsewhere.sh && pip install x") == [["x"]]
    (tmp_path / "bashrc").write_text('[ -z "$PS1" ] && return\nconda activate ~/myenv\n')
    assert stopped("source bashrc && python -m pip install numpy") == [["numpy"]]
    assert stopped(". ./bashrc; conda install numpy") == [["numpy"]]
    # and a script that sources itself is read a bounded number of times, however it fans out
    assert 1 <= len(stopped("bash loop.sh")) <= 4
    (tmp_path / "fan.sh").write_text(". ./fan.sh\n" * 40 + "pip install x\n")
    assert 1 <= len(stopped("bash fan.sh")) <= 16  # (40 ** 4 reads otherwise: hours)
    # and a long script is read to its end (up to MAX_FILE_BYTES)
    (tmp_path / "long.sh").write_text("# " + "x" * 120_000 + "\npip install y\n")
    assert stopped("bash long.sh") == [["y"]]
    # and what cannot be read as a regular file is not read (nor waited for)
    assert stopped("bash missing.sh") == []
    assert stopped("bash /dev/stdin") == []
    assert stopped("bash -s < setup.sh") == []
