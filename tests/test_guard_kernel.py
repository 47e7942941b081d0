"""The install guard in real shared-environment kernels, executed by nbclient.

Every blocked form must leave the environment byte-for-byte unchanged and show the advice (text and
MIME bundle with the parsed specs); every pass-through form must reach the real tool and have its
real effect. The `conda` binary does not exist here: a test double stands in for it (tests/kernels.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jupyter_envshare.cli import main as cli_main
from jupyter_envshare.spool import read_events
from jupyter_envshare.testing.layouts import SharedInstallation, build_isis_installation
from jupyter_envshare.testing.wheels import make_wheel

from .conftest import envshare_config, write_user_config
from .kernels import display_bundles, env_digest, execute, install_conda_test_double, stdout_of

pytestmark = pytest.mark.slow

MIME = "application/vnd.envshare.advice+json"
KERNEL = "conda-env-isis4.3.0-py"

BLOCKED: list[tuple[str, list[str]]] = [
    ("!conda install -y scipy", ["scipy"]),
    ("!mamba install -c conda-forge polars", ["polars"]),
    ("!micromamba remove -y isis", ["isis"]),
    ("!pip install polars", ["polars"]),
    ("!pip3 uninstall -y ipykernel", ["ipykernel"]),
    ("!python -m pip install requests", ["requests"]),
    ("import sys\n!{sys.executable} -m pip install 'numpy>=1.26'", ["numpy>=1.26"]),
    ("!uv pip install polars", ["polars"]),
    ("%pip install polars", ["polars"]),
    ("%conda install scipy", ["scipy"]),
    ("%mamba install scipy", ["scipy"]),
    ("%micromamba install scipy", ["scipy"]),
    ("%uv pip install polars", ["polars"]),
    ("get_ipython().system('pip install polars')", ["polars"]),
    ("%%bash\necho this must not run\npip install polars", ["polars"]),
    ("%%sh\nconda install -y \\\n  scipy", ["scipy"]),
    ("out = !pip install polars", ["polars"]),
    ("pkg = 'polars'\n!pip install {pkg}", ["polars"]),
    ("!pip list && pip install requests", ["requests"]),
    ("!pip install 'ünïcode-pkg' \"quoted pkg\" $HOME", []),
    ("!pip install " + " ".join(f"pkg{i}" for i in range(3000)), [f"pkg{i}" for i in range(50)]),
]

SHIMMED = [
    # Outside IPython's syntax: the PATH shims answer with the same advice, as text, exit status 1.
    "import subprocess\nr = subprocess.run(['pip', 'install', 'polars'], capture_output=True, text=True)\n"
    "print(r.returncode, 'shared, read-only' in r.stderr, 'polars' in r.stderr)",
    "import os\nprint(os.system('conda install -y scipy >/dev/null 2>&1') != 0)",
]


@pytest.fixture(scope="module")
def guard_site(tmp_path_factory: pytest.TempPathFactory) -> SharedInstallation:
    """A small installation the blocked/pass-through notebooks run against (never changed)."""
    return build_isis_installation(
        tmp_path_factory.mktemp("guard-site"), versions=("4.2.0", "4.3.0"), launchable=["isis4.3.0"]
    )


@pytest.fixture
def conda_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The conda test double on PATH, as a `condabin` directory would be."""
    directory = install_conda_test_double(tmp_path / "condabin")
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def configure(home: Path, inst: SharedInstallation, **extra: Any) -> None:
    write_user_config(home, envshare_config(inst, contact="the planetary team", **extra))


def test_every_blocked_form_changes_nothing_and_advises(
    guard_site: SharedInstallation, jupyter_home: Path, conda_double: Path
) -> None:
    # Given a guarded kernel on the shared env
    configure(jupyter_home, guard_site)
    prefix = guard_site.prefix("isis4.3.0")
    before = env_digest(prefix)
    # When a notebook tries every way to change it
    nb = execute(KERNEL, [cell for cell, _ in BLOCKED] + SHIMMED, timeout=180)
    # Then the environment is byte-for-byte unchanged
    assert env_digest(prefix) == before
    # and each IPython form showed the advice with the specs parsed from its command
    for (source, specs), cell in zip(BLOCKED, nb.cells, strict=False):
        bundles = [b for b in display_bundles(cell) if MIME in b]
        assert len(bundles) == 1, f"no advice for {source[:60]!r}: {cell.outputs}"
        payload = bundles[0][MIME]
        assert payload["env"] == "isis4.3.0"
        assert payload["specs"] == specs, source[:60]
        assert "shared, read-only" in bundles[0]["text/plain"]
        assert "the planetary team" in bundles[0]["text/plain"]
        assert "this must not run" not in stdout_of(cell)
        assert not [o for o in cell.outputs if o.get("output_type") == "error"], source[:60]
    # and the shims answered subprocess and os.system the same way
    shim_cells = nb.cells[len(BLOCKED) :]
    assert stdout_of(shim_cells[0]).split() == ["1", "True", "True"]
    assert stdout_of(shim_cells[1]).strip() == "True"
    # and each attempt was counted per env and package, never with the command's text
    spool = jupyter_home / "runtime" / "envshare"
    attempts = [e for e in read_events(str(spool)) if e["kind"] == "install-attempt"]
    assert len(attempts) == len(BLOCKED) + len(SHIMMED)
    assert {"scipy", "polars", "requests", "numpy", "ipykernel"} <= {
        p for e in attempts for p in e["packages"]
    }
    assert all(e["env"] == "isis4.3.0" and e["user"] for e in attempts)
    raw = (spool / "events.jsonl").read_text()
    assert "conda-forge" not in raw
    assert "this must not run" not in raw
    assert '"command"' not in raw


def test_pass_through_forms_reach_the_real_tools(
    guard_site: SharedInstallation, jupyter_home: Path, conda_double: Path, tmp_path: Path
) -> None:
    configure(jupyter_home, guard_site)
    prefix = guard_site.prefix("isis4.3.0")
    before = env_digest(prefix)
    wheel = make_wheel(tmp_path / "wheels")
    bang_target, magic_target = tmp_path / "lib-bang", tmp_path / "lib-magic"
    mine = jupyter_home / "envs" / "mine"
    cells = [
        "!pip list",
        "!pip show ipykernel",
        f"!pip install --no-index --target {bang_target} {wheel}",
        f"%pip install --no-index --target {magic_target} {wheel}",
        "!conda list",
        f"!conda install -p {mine} scipy",
        "import subprocess\n"
        "r = subprocess.run(['pip', '--version'], capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout)",
        "!conda env export",
        "%envshare",
    ]
    nb = execute(KERNEL, cells, timeout=180)
    out = [stdout_of(cell) for cell in nb.cells]
    for cell in nb.cells:
        assert not [b for b in display_bundles(cell) if MIME in b], cell.source
    assert "ipykernel" in out[0]
    assert "Name: ipykernel" in out[1]
    assert (bang_target / "envshare_probe_pkg" / "__init__.py").is_file()
    assert (magic_target / "envshare_probe_pkg" / "__init__.py").is_file()
    assert "isis" in out[4]
    assert out[4].startswith("# packages in environment at")
    assert (mine / "conda-meta" / "double-install.json").is_file()
    assert out[6].startswith("0 pip ")
    assert "conda test double: env export" in out[7]
    assert "Shared environment: isis4.3.0" in out[8]
    assert env_digest(prefix) == before


def test_request_intent_is_recorded_for_the_kernel_user(
    guard_site: SharedInstallation, jupyter_home: Path, conda_double: Path
) -> None:
    configure(jupyter_home, guard_site)
    nb = execute(
        KERNEL,
        [
            '%envshare request "polars>=1.0" scipy --reason "faster joins <b>&</b>"',
            "%envshare request polars",
        ],
    )
    assert "Recorded your request for polars>=1.0 scipy" in stdout_of(nb.cells[0])
    assert "needs at least one spec and a reason" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    intents = [
        e for e in read_events(str(jupyter_home / "runtime" / "envshare")) if e["kind"] == "request-intent"
    ]
    assert len(intents) == 1
    assert intents[0]["specs"] == ["polars>=1.0", "scipy"]
    assert intents[0]["reason"] == "faster joins <b>&</b>"
    assert intents[0]["env"] == "isis4.3.0"


def test_warn_mode_advises_and_lets_it_run(
    mutable_site: SharedInstallation, jupyter_home: Path, conda_double: Path
) -> None:
    configure(
        jupyter_home,
        mutable_site,
        guard_mode="warn",
        advice_template="Careful: {env} is shared ({packages}).",
    )
    prefix = mutable_site.prefix("isis4.3.0")
    nb = execute(KERNEL, ["!conda install -y scipy"])
    bundle = next(b for b in display_bundles(nb.cells[0]) if MIME in b)
    assert bundle["text/markdown"] == "Careful: isis4.3.0 is shared (`scipy`)."
    assert bundle[MIME]["mode"] == "warn"
    assert "conda test double: install scipy" in stdout_of(nb.cells[0])
    assert (prefix / "conda-meta" / "double-install.json").is_file()


def _errors(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.get("output_type") == "error"]


def _streams(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_spawns_outside_ipython_syntax_meet_the_audit_hook(
    guard_site: SharedInstallation, jupyter_home: Path, conda_double: Path, tmp_path: Path
) -> None:
    # Given a guarded kernel on the shared env
    configure(jupyter_home, guard_site)
    prefix = guard_site.prefix("isis4.3.0")
    before = env_digest(prefix)
    wheel = make_wheel(tmp_path / "wheels")
    lib = tmp_path / "lib-spawn"
    pip = str(prefix / "bin" / "pip")
    # When code starts pip in ways no `!` line or PATH shim sees
    stopped = [
        (
            "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', 'polars'])",
            "polars",
        ),
        (f"import subprocess\nsubprocess.run([{pip!r}, 'install', 'requests'])", "requests"),
        ("import subprocess\nsubprocess.run('python -Im pip install numpy', shell=True)", "numpy"),
    ]
    cells = [source for source, _ in stopped] + [
        "import os\ntry:\n    rc = os.system('python -m pip install scipy')\n"
        "except PermissionError as err:\n    print('blocked', type(err).__name__)\n"
        "else:\n    print('ran', rc)",
        # what does not change the shared env runs
        "import subprocess, sys\nr = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', "
        f"'--target', {str(lib)!r}, {str(wheel)!r}], capture_output=True, text=True)\n"
        "print(r.returncode, r.stderr)",
        "import subprocess, sys\nr = subprocess.run([sys.executable, '-m', 'pip', 'list'], "
        "capture_output=True, text=True)\nprint(r.returncode, 'ipykernel' in r.stdout)",
        # a disarmed guard's hook does nothing (audit hooks cannot be removed)
        "%unload_ext envshare_guard",
        "import subprocess, sys\nr = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', "
        "'envshare-no-such-pkg'], capture_output=True, text=True)\n"
        "print(r.returncode != 0, 'envshare-no-such-pkg' in r.stderr)",
    ]
    nb = execute(KERNEL, cells, timeout=180)
    # Then the environment is byte-for-byte unchanged
    assert env_digest(prefix) == before
    # and each stopped spawn raised SharedEnvironmentReadOnly with the advice, and showed the bundle
    for (source, spec), cell in zip(stopped, nb.cells, strict=False):
        errors = _errors(cell)
        assert [e["ename"] for e in errors] == ["SharedEnvironmentReadOnly"], source
        assert "shared, read-only" in errors[0]["evalue"]
        bundles = [b for b in display_bundles(cell) if MIME in b]
        assert len(bundles) == 1, source
        assert bundles[0][MIME]["specs"] == [spec]
    system_cell = nb.cells[len(stopped)]
    assert stdout_of(system_cell).strip() == "blocked SharedEnvironmentReadOnly"
    assert [b[MIME]["specs"] for b in display_bundles(system_cell) if MIME in b] == [["scipy"]]
    out = [stdout_of(cell) for cell in nb.cells[len(stopped) + 1 :]]
    assert out[0].startswith("0 "), out[0]
    assert (lib / "envshare_probe_pkg" / "__init__.py").is_file()
    assert out[1].split() == ["0", "True"]
    assert out[3].split() == ["True", "True"]
    for cell in nb.cells[len(stopped) + 1 :]:
        assert not _errors(cell), cell.source
        assert not [b for b in display_bundles(cell) if MIME in b], cell.source
    # and each attempt was counted once
    attempts = [
        e for e in read_events(str(jupyter_home / "runtime" / "envshare")) if e["kind"] == "install-attempt"
    ]
    assert sorted(p for e in attempts for p in e["packages"]) == ["numpy", "polars", "requests", "scipy"]
    assert {e["via"] for e in attempts} == {"spawn"}


def test_warn_mode_counts_each_attempt_once(
    mutable_site: SharedInstallation, jupyter_home: Path, conda_double: Path
) -> None:
    # Given a kernel whose guard only warns
    configure(jupyter_home, mutable_site, guard_mode="warn")
    missing = "envshare-no-such-pkg"
    advised = [
        "!conda install -y scipy",  # `!` wrapper, then the conda shim
        f"%pip install --no-index {missing}",  # magic, then the system wrapper
        "%%bash\nconda install -y pandas",  # cell magic, then the shim
        "out = !conda install -y polars",  # getoutput wrapper, then the shim
        f"import subprocess, sys\nr = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', "
        f"{missing!r}], capture_output=True, text=True)\nprint('rc', r.returncode)",  # the audit hook
    ]
    cells = [
        *advised,
        # the shim alone (the audit hook leaves bare names on PATH to it)
        "import subprocess\nr = subprocess.run(['conda', 'install', '-y', 'xarray'], "
        "capture_output=True, text=True)\nprint(r.returncode, 'shared, read-only' in r.stderr)",
        "import os\nprint(os.environ.get('ENVSHARE_GUARD_JUDGED'))",
    ]
    # When each is tried once
    nb = execute(KERNEL, cells, timeout=180)
    # Then each showed its advice exactly once and ran anyway
    for source, cell in zip(advised, nb.cells, strict=False):
        bundles = [b for b in display_bundles(cell) if MIME in b]
        assert len(bundles) == 1, (source, cell.outputs)
        assert bundles[0][MIME]["mode"] == "warn"
        assert "shared, read-only" not in _streams(cell), source  # no second advice from a shim
        assert not _errors(cell), source
    assert "conda test double: install scipy" in stdout_of(nb.cells[0])
    shim_cell = nb.cells[len(advised)]
    assert stdout_of(shim_cell).split() == ["0", "True"]
    assert not display_bundles(shim_cell)
    assert stdout_of(nb.cells[-1]).strip() == "None"  # the marker lives only while a command runs
    # and each attempt was recorded exactly once
    attempts = [
        e for e in read_events(str(jupyter_home / "runtime" / "envshare")) if e["kind"] == "install-attempt"
    ]
    assert len(attempts) == len(advised) + 1, [(e["via"], e["packages"]) for e in attempts]
    assert sorted(e["via"] for e in attempts) == ["cell", "magic", "shim", "spawn", "system", "system"]
    assert all(e["mode"] == "warn" for e in attempts)


def test_off_mode_arms_nothing(
    mutable_site: SharedInstallation, jupyter_home: Path, conda_double: Path
) -> None:
    configure(jupyter_home, mutable_site, guard_mode="off")
    nb = execute(
        KERNEL,
        [
            "!conda install -y scipy",
            "import os\nmagics = get_ipython().magics_manager.magics['line']\n"
            "print('envshare' in magics, 'ENVSHARE_GUARD' in os.environ)",
        ],
    )
    assert not display_bundles(nb.cells[0])
    assert (mutable_site.prefix("isis4.3.0") / "conda-meta" / "double-install.json").is_file()
    assert stdout_of(nb.cells[1]).split() == ["False", "False"]


def test_seal_makes_a_terminal_pip_refuse_and_unseal_lifts_it(
    mutable_site: SharedInstallation, jupyter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sealed environment
    configure(jupyter_home, mutable_site)
    assert cli_main(["seal", "isis4.3.0", "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    prefix = mutable_site.prefix("isis4.3.0")
    assert report["sealed"] is True
    frozen = json.loads((prefix / "conda-meta" / "frozen").read_text())
    assert "isis4.3.0 is a shared, read-only environment managed by the planetary team" in frozen["message"]
    wheel = make_wheel(tmp_path / "wheels")
    pip = [str(prefix / "bin" / "pip"), "install", "--no-index", str(wheel)]
    # When pip is run from a terminal (no kernel, no guard)
    refused = subprocess.run(
        pip, capture_output=True, text=True, check=False, env={**os.environ, "PIP_NO_INPUT": "1"}
    )
    # Then pip refuses with our message and installs nothing
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stderr
    assert "managed by the planetary team" in refused.stderr
    assert not list(prefix.glob("lib/python3.*/site-packages/envshare_probe_pkg"))
    # When it is unsealed, the same pip installs
    assert cli_main(["unseal", "isis4.3.0"]) in (0, 1)
    assert not (prefix / "conda-meta" / "frozen").exists()
    done = subprocess.run(pip, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert list(prefix.glob("lib/python3.*/site-packages/envshare_probe_pkg"))
