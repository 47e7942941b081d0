"""The guard's judgement on package commands: what is stopped, what passes, and odd input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The guard is importable as `envshare_guard` (pytest's pythonpath), as it is inside kernels.
from envshare_guard.advice import MIME_TYPE, render
from envshare_guard.commands import (
    Target,
    analyze,
    analyze_argv,
    blocked,
    package_names,
    requestable,
)
from envshare_guard.context import GuardContext
from hypothesis import given, settings
from hypothesis import strategies as st

PREFIX = "/nfs/cpkgs/v1/envs/isis4.3.0"
TARGET = Target(
    env="isis4.3.0", prefix=PREFIX, roots=("/nfs/cpkgs/v1/envs",), home="/home/u", cwd="/home/u/work"
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
    "~/venv/bin/pip install x",
    "/home/u/venv/bin/python -m pip install x",
    "source ~/venv/bin/activate && pip install x",
    ". ~/venv/bin/activate; python -m pip install x",
    "env VIRTUAL_ENV=/home/u/v pip install x",
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
            ]
        ),
        max_size=30,
    )
)
def test_shell_like_word_soup_is_judged_without_error(words: list[str]) -> None:
    analyze(" ".join(words), TARGET)


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
