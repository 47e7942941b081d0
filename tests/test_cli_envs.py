"""``jupyter envshare list|show|drift|stamp|lock|export|doctor`` run for real on rattler-built installations.

Commands run in-process through ``jupyter_envshare.cli.main`` (output captured) and as the installed
``jupyter-envshare`` console script in a child process; environments are changed for real (a pip
install of a local wheel, an edited file, a stamp, a seal) and the exit codes a script relies on
are checked along with what the commands print and write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from rattler import PrefixRecord

from jupyter_envshare.cli import main
from jupyter_envshare.lockfiles import LOCK_FORMATS, package_ref, read_lock, write_lock
from jupyter_envshare.sidecar import stamp
from jupyter_envshare.spool import make_event
from jupyter_envshare.store import RequestStore
from jupyter_envshare.testing.layouts import SharedInstallation
from jupyter_envshare.testing.wheels import make_wheel

from .conftest import BROKEN, envshare_config, write_user_config

ENVSHARE = Path(sys.executable).parent / "jupyter-envshare"
ISIS = "isis4.3.0"  # the launchable env of ``mutable_site`` (it has bin/pip)
SPEC = """\
name: isis4.3.0
channels:
  - local
dependencies:
  - isis ==4.3.0
  - ipykernel
"""


@dataclass(frozen=True)
class Run:
    """One command's exit code and output."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _wide_output_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Tables as on a wide terminal, so cells are not wrapped mid-word; and the log level the CLI
    # sets on the library's logger must not leak into other tests of this process.
    monkeypatch.setenv("COLUMNS", "250")
    logger = logging.getLogger("jupyter_envshare")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``jupyter envshare ARGS`` in this process; return its exit code and output."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def run_script(*args: str | Path) -> Run:
    """Run the installed ``jupyter-envshare`` console script in a child process."""
    assert ENVSHARE.is_file(), f"the console script is not installed next to {sys.executable}"
    done = subprocess.run(
        [str(ENVSHARE), *map(str, args)], capture_output=True, text=True, check=False, timeout=180
    )
    return Run(done.returncode, done.stdout, done.stderr)


def records_of(prefix: Path) -> list[PrefixRecord]:
    """The environment's conda-meta records as py-rattler reads them (independently of the CLI)."""
    return [PrefixRecord.from_path(p) for p in sorted((prefix / "conda-meta").glob("*.json"))]


def nvb(prefix: Path) -> set[tuple[str, str, str]]:
    """(name, version, build) of every installed conda package."""
    return {(r.name.normalized, str(r.version), str(r.build)) for r in records_of(prefix)}


def own_lock(prefix: Path, path: Path, fmt: str = "conda-lock") -> Path:
    """A lock of format ``fmt`` made from the environment's own records (not by the CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_lock([package_ref(r) for r in records_of(prefix)], fmt, path)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip_install_wheel(prefix: Path, wheel: Path) -> None:
    """``<prefix>/bin/pip install`` a local wheel, as a user with write access would."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(PIP_ROOT_USER_ACTION="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(
        [str(prefix / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def shared(site: SharedInstallation, jupyter_home: Path) -> SharedInstallation:
    """The session's shared installation (with its broken envs), named in the user's config file."""
    write_user_config(jupyter_home, envshare_config(site))
    return site


@pytest.fixture
def small(mutable_site: SharedInstallation, jupyter_home: Path) -> SharedInstallation:
    """A small installation of this test's own, named in the user's config file (nothing stamped)."""
    write_user_config(jupyter_home, envshare_config(mutable_site))
    return mutable_site


@pytest.fixture
def stamped(small: SharedInstallation, tmp_path: Path) -> SharedInstallation:
    """``small`` with isis4.3.0 stamped with its spec and a conda-lock made from its own records."""
    prefix = small.prefix(ISIS)
    lock = own_lock(prefix, tmp_path / "build" / "conda-lock.yml")
    spec = tmp_path / "build" / "environment.yml"
    spec.write_text(SPEC)
    stamp(prefix, spec=spec, lock=lock)
    return small


# -- list ---------------------------------------------------------------------------------------------


def test_list_json_names_every_env_and_fails_on_broken_ones(shared: SharedInstallation) -> None:
    # Given the shared installation, with a dangling symlink among its environments
    # When the installed console script lists it
    done = run_script("list", "--json")

    # Then every environment is listed with a status, and the dangling one makes the exit code 1
    assert done.code == 1, done.err
    envs = {e["name"]: e for e in done.json()["envs"]}
    assert set(envs) == set(shared.env_prefixes) | set(BROKEN)
    assert {e["status"] for e in envs.values()} <= {"in-sync", "drifted", "unlocked", "unavailable"}
    assert envs["gone"]["status"] == "unavailable"
    assert envs["gone"]["package_count"] is None
    assert envs["gone"]["problems"][0]["kind"] == "dangling-symlink"
    assert envs["isis4.3.0"]["status"] == "unlocked"
    assert envs["isis4.3.0"]["kernels"] == ["conda-env-isis4.3.0-py"]
    assert envs["isis4.3.0"]["package_count"] == len(records_of(shared.prefix("isis4.3.0")))
    assert any(p["kind"] == "private-records" for p in envs["private-records"]["problems"])
    # ... and stdout is only the JSON document (progress goes to stderr)
    assert done.out.lstrip().startswith("{")


def test_list_exits_0_when_every_env_is_fine_and_1_once_one_drifts(
    stamped: SharedInstallation, tmp_path: Path, cli: Any
) -> None:
    # Given a small installation whose one locked environment is in sync
    # When it is listed, as JSON and as a table
    listed = cli("list", "--json")
    table = cli("list")

    # Then the locked one is in sync, the others unlocked, and the exit code is 0
    assert listed.code == 0, listed.err
    statuses = {e["name"]: e["status"] for e in listed.json()["envs"]}
    assert statuses == {
        "isis4.2.0": "unlocked",
        "isis4.3.0": "in-sync",
        "rstats": "unlocked",
        "nokernel": "unlocked",
        "activated": "unlocked",
    }
    assert table.code == 0
    assert "5 shared environments" in table.out
    assert "in-sync" in table.out
    assert "ENVIRONMENT" in table.out
    assert "STATUS" in table.out

    # When a wheel is pip-installed into the locked environment
    pip_install_wheel(stamped.prefix(ISIS), make_wheel(tmp_path / "wheels"))
    relisted = cli("list", "--json")

    # Then it is drifted and the listing exits 1
    assert relisted.code == 1
    assert {e["name"]: e["status"] for e in relisted.json()["envs"]}[ISIS] == "drifted"


# -- show ---------------------------------------------------------------------------------------------


def test_show_has_provenance_history_and_kernels(
    stamped: SharedInstallation, tmp_path: Path, cli: Any
) -> None:
    # Given isis4.3.0 stamped with its spec and lock, built in two conda transactions
    prefix = stamped.prefix(ISIS)

    # When it is shown as JSON
    shown = cli("show", ISIS, "--json")

    # Then provenance names spec, lock and builder
    assert shown.code == 0, shown.err
    detail = shown.json()
    prov = detail["provenance"]
    assert prov["spec"]["path"] == str(tmp_path / "build" / "environment.yml")
    assert prov["spec"]["name"] == ISIS
    assert "isis ==4.3.0" in prov["spec"]["dependencies"]
    assert prov["spec"]["sha256"] == sha256_of(tmp_path / "build" / "environment.yml")
    assert prov["lock"]["format"] == "conda-lock"
    assert prov["lock"]["package_count"] == len(records_of(prefix))
    assert prov["builder"]["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert prov["builder"]["tool"] == "conda"
    assert prov["built_at"]
    assert detail["status"] == "in-sync"
    # ... the history holds both transactions, with what each added
    history = detail["history"]
    assert [t["command"].split()[:2] for t in history] == [["conda", "create"], ["conda", "install"]]
    assert any(dist.endswith("isis-4.3.0-h0_0") for dist in history[0]["added"])
    assert any("envshare-kernel-python" in dist for dist in history[1]["added"])
    assert all(t["tool"] == "conda" and t["date"] for t in history)
    # ... and the kernels it offers
    assert [(k["name"], k["display_name"]) for k in detail["kernels"]] == [
        ("conda-env-isis4.3.0-py", "Python 3 [shared: isis4.3.0]")
    ]

    # When it is shown to a person
    human = cli("show", ISIS)

    # Then the facts and the history table are there
    assert human.code == 0
    assert "status: in-sync" in human.out
    assert str(tmp_path / "build" / "conda-lock.yml") in human.out
    assert "history" in human.out
    for column in ("DATE", "TOOL", "COMMAND"):
        assert column in human.out
    assert history[0]["date"][:19] in human.out
    assert "conda create" in human.out
    assert "conda install" in human.out
    assert "conda-env-isis4.3.0-py" in human.out


def test_show_an_unavailable_env_says_why(shared: SharedInstallation, cli: Any) -> None:
    # Given an environment that is a dangling symlink
    # When it is shown, as JSON and to a person
    doc = cli("show", "gone", "--json")
    human = cli("show", "gone")

    # Then both say it is unavailable and why, without inventing facts
    assert doc.code == human.code == 0
    detail = doc.json()
    assert (detail["status"], detail["package_count"], detail["history"]) == ("unavailable", None, [])
    assert detail["provenance"]["lock"] is None
    assert any(p["kind"] == "dangling-symlink" for p in detail["problems"])
    assert "status: unavailable" in human.out
    assert "does not exist" in human.out
    assert "None" not in human.out


# -- drift --------------------------------------------------------------------------------------------


def test_drift_exit_codes_in_sync_unlocked_and_unknown(stamped: SharedInstallation, cli: Any) -> None:
    # Given isis4.3.0 stamped with its own lock and isis4.2.0 without any lock
    # When drift is checked on each, and on a name no environment has
    in_sync = cli("drift", ISIS)
    in_sync_json = cli("drift", ISIS, "--json")
    unlocked = cli("drift", "isis4.2.0")
    unknown = cli("drift", "no-such-env")

    # Then in sync exits 0, unlocked and unknown exit 2, the unknown one saying where to look
    assert in_sync.code == 0, in_sync.err
    assert f"{ISIS}: in-sync" in in_sync.out
    assert in_sync_json.code == 0
    report = in_sync_json.json()
    assert (report["status"], report["changes"], report["deep"]) == ("in-sync", [], False)
    assert report["lock"]["format"] == "conda-lock"
    assert unlocked.code == 2
    assert "isis4.2.0: unlocked" in unlocked.out
    assert "jupyter envshare stamp" in unlocked.out
    assert unknown.code == 2
    assert unknown.out == ""
    assert "no-such-env" in unknown.err
    assert "jupyter envshare list" in unknown.err


def test_drift_after_a_pip_install_exits_1(stamped: SharedInstallation, tmp_path: Path, cli: Any) -> None:
    # Given an in-sync environment into which a wheel is pip-installed with its own pip
    pip_install_wheel(stamped.prefix(ISIS), make_wheel(tmp_path / "wheels"))

    # When drift is checked by the console script and in-process
    script = run_script("drift", ISIS, "--json")
    human = cli("drift", ISIS)

    # Then both exit 1 and report exactly the pip overlay
    assert script.code == 1, script.err
    report = script.json()
    assert report["status"] == "drifted"
    assert [(c["kind"], c["package"], c["installed"]) for c in report["changes"]] == [
        ("pip-overlay", "envshare_probe_pkg", "envshare_probe_pkg==1.0")
    ]
    assert human.code == 1
    assert f"{ISIS}: drifted" in human.out
    assert "1 pip-overlay" in human.out
    assert "envshare_probe_pkg" in human.out


def test_deep_drift_finds_an_edited_file(stamped: SharedInstallation, cli: Any) -> None:
    # Given an in-sync environment, deeply checked
    prefix = stamped.prefix(ISIS)
    before = cli("drift", ISIS, "--deep", "--json")
    assert before.code == 0, before.out
    assert before.json()["deep"] is True

    # When a file of the isis package is edited (unlinked first: it may be a hardlink into the cache)
    version_file = prefix / "share" / "isis" / "VERSION"
    original = version_file.read_bytes()
    version_file.unlink()
    version_file.write_text("4.3.0-patched\n")
    cheap = cli("drift", ISIS, "--json")
    deep = cli("drift", ISIS, "--deep", "--json")

    # Then only the deep check sees it: exactly one file-modified change with both hashes
    assert cheap.code == 0
    assert deep.code == 1
    doc = deep.json()
    assert doc["status"] == "drifted"
    assert doc["deep"] is True
    assert doc["changes"] == [
        {
            "kind": "file-modified",
            "package": "isis",
            "locked": "sha256:" + hashlib.sha256(original).hexdigest(),
            "installed": "sha256:" + hashlib.sha256(b"4.3.0-patched\n").hexdigest(),
            "path": "share/isis/VERSION",
        }
    ]


# -- stamp --------------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Builder", "-c", "user.email=builder@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_stamp_with_git_writes_the_sidecar(small: SharedInstallation, tmp_path: Path, cli: Any) -> None:
    # Given a git repository holding the env's spec and a lock made from its records, committed,
    # with a remote whose URL carries credentials
    prefix = small.prefix(ISIS)
    repo = tmp_path / "envs-repo"
    repo.mkdir()
    git(repo, "init", "-q")
    spec = repo / "isis" / "environment.yml"
    spec.parent.mkdir()
    spec.write_text(SPEC)
    lock = own_lock(prefix, repo / "isis" / "conda-lock.yml")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "isis 4.3.0")
    git(repo, "remote", "add", "origin", "https://builder:s3cret@git.example.org/site/envs.git")
    head = git(repo, "rev-parse", "HEAD")
    assert cli("drift", ISIS).code == 2  # unlocked so far

    # When the environment is stamped with spec, lock and git
    done = cli("stamp", ISIS, "--spec", spec, "--lock", lock, "--git", "--json")

    # Then conda-meta/envshare holds hashes, lock format, git remote (no credentials) and commit
    assert done.code == 0, done.err
    sidecar_file = prefix / "conda-meta" / "envshare"
    sidecar = json.loads(sidecar_file.read_text())
    assert sidecar["spec_path"] == str(spec)
    assert sidecar["spec_sha256"] == sha256_of(spec)
    assert sidecar["lock_path"] == str(lock)
    assert sidecar["lock_sha256"] == sha256_of(lock)
    assert sidecar["lock_format"] == "conda-lock"
    assert sidecar["git"] == {"remote_url": "https://git.example.org/site/envs.git", "sha": head}
    assert sidecar["builder"]["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert sidecar["built_at"].endswith("Z")
    assert "s3cret" not in sidecar_file.read_text()
    assert sidecar_file.stat().st_mode & 0o777 == 0o644
    assert done.json() == {"env": ISIS, "sidecar": sidecar}
    # ... and the environment is now in sync with that lock, its provenance naming the commit
    assert cli("drift", ISIS).code == 0
    assert cli("show", ISIS, "--json").json()["provenance"]["git"]["sha"] == head


def test_stamp_refuses_what_it_cannot_record(small: SharedInstallation, tmp_path: Path, cli: Any) -> None:
    # Given a spec outside any git repository and a file in no lock format
    spec = tmp_path / "loose" / "environment.yml"
    spec.parent.mkdir()
    spec.write_text(SPEC)
    not_a_lock = tmp_path / "loose" / "notes.txt"
    not_a_lock.write_text("numpy\nscipy\n")
    sidecar = small.prefix(ISIS) / "conda-meta" / "envshare"

    # When stamp is asked for nothing, for git outside a repository, or with a non-lock
    nothing = cli("stamp", ISIS)
    no_repo = cli("stamp", ISIS, "--spec", spec, "--git")
    bad_lock = cli("stamp", ISIS, "--lock", not_a_lock)

    # Then each exits 2 with a reason, and no sidecar is written
    assert (nothing.code, no_repo.code, bad_lock.code) == (2, 2, 2)
    assert "--spec and/or --lock" in nothing.err
    assert "not inside a git repository" in no_repo.err
    assert "no lock format" in bad_lock.err
    assert not sidecar.exists()


# -- lock ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LOCK_FORMATS)
def test_lock_reads_back_as_the_installed_state(
    fmt: str, small: SharedInstallation, tmp_path: Path, cli: Any
) -> None:
    # Given an environment nobody locked
    prefix = small.prefix(ISIS)
    out = tmp_path / "locks" / f"isis.{fmt}"
    out.parent.mkdir()

    # When its installed state is written as a lock file
    done = cli("lock", ISIS, "--format", fmt, "-o", out, "--json")

    # Then the file reads back in that format with exactly the env's (name, version, build) set
    assert done.code == 0, done.err
    info = read_lock(out)
    assert info.format == fmt
    assert info.problems == ()
    assert {(p.name.lower(), p.version, p.build) for p in info.packages} == nvb(prefix)
    assert done.json() == {
        "env": ISIS,
        "path": str(out),
        "format": fmt,
        "sha256": sha256_of(out),
        "packages": len(nvb(prefix)),
        "problems": [],
    }

    # When the environment is stamped with that lock, Then drift finds it in sync
    assert cli("stamp", ISIS, "--lock", out).code == 0
    drift = cli("drift", ISIS, "--json")
    assert drift.code == 0, drift.out
    assert drift.json()["lock"] == {"path": str(out), "format": fmt, "sha256": sha256_of(out)}


def test_lock_default_file_name_and_unknown_env(
    small: SharedInstallation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    # Given a working directory
    monkeypatch.chdir(tmp_path)

    # When a lock is written without -o, and one is asked of an unknown env
    done = cli("lock", "rstats", "--format", "pixi")
    unknown = cli("lock", "no-such-env")

    # Then it is named after the env and format, and the unknown env exits 2
    assert done.code == 0, done.err
    written = tmp_path / "rstats.pixi.lock"
    assert "rstats.pixi.lock" in done.out
    assert {(p.name, p.version, p.build) for p in read_lock(written).packages} == nvb(small.prefix("rstats"))
    assert unknown.code == 2
    assert "jupyter envshare list" in unknown.err


# -- export -------------------------------------------------------------------------------------------


def test_export_writes_a_spec_per_usable_env_and_an_inventory(
    shared: SharedInstallation, tmp_path: Path, cli: Any
) -> None:
    # Given the shared installation (one env is a dangling symlink)
    usable = (set(shared.env_prefixes) | set(BROKEN)) - {"gone"}
    channel = shared.channel_dir.as_uri()

    # When it is exported with builds, and without
    with_builds = cli("export", "--dir", tmp_path / "full", "--json")
    no_builds = cli("export", "--dir", tmp_path / "loose", "--no-builds")

    # Then each usable environment has a spec pinning its packages exactly, and nothing else is there
    assert with_builds.code == 0, with_builds.err
    assert no_builds.code == 0, no_builds.err
    for directory in (tmp_path / "full", tmp_path / "loose"):
        assert {p.name for p in directory.iterdir()} == {f"{n}.environment.yml" for n in usable} | {
            "inventory.json"
        }
    inventory = json.loads((tmp_path / "full" / "inventory.json").read_text())
    assert inventory["builds"] is True
    assert inventory["platform"] == "linux-64"
    entries = {e["name"]: e for e in inventory["environments"]}
    assert set(entries) == usable
    assert with_builds.json()["environments"] == inventory["environments"]
    for name in usable:
        prefix = Path(entries[name]["prefix"])
        installed = nvb(prefix)
        full = yaml.safe_load((tmp_path / "full" / f"{name}.environment.yml").read_text())
        loose = yaml.safe_load((tmp_path / "loose" / f"{name}.environment.yml").read_text())
        assert full["name"] == loose["name"] == name
        assert full["channels"] == loose["channels"] == [channel]
        assert sorted(full["dependencies"]) == sorted(f"{n}={v}={b}" for n, v, b in installed)
        assert sorted(loose["dependencies"]) == sorted(f"{n}={v}" for n, v, _ in installed)
        assert entries[name]["spec"] == f"{name}.environment.yml"
        assert entries[name]["package_count"] == len(installed)
        assert entries[name]["status"] in ("unlocked", "in-sync", "drifted")
    assert entries["isis4.3.0"]["kernels"] == ["conda-env-isis4.3.0-py"]
    assert json.loads((tmp_path / "loose" / "inventory.json").read_text())["builds"] is False
    assert "environments exported" in no_builds.out


# -- doctor and seal ----------------------------------------------------------------------------------


def findings_of(run: Run) -> set[tuple[str, str, str]]:
    """(scope, kind, severity) of every finding of ``doctor --json``."""
    return {(f["scope"], f["kind"], f["severity"]) for f in run.json()["findings"]}


def test_doctor_reports_the_broken_envs_of_the_installation(shared: SharedInstallation, cli: Any) -> None:
    # Given the shared installation with private records, a corrupt kernel.json and a dangling link
    # When the doctor examines it
    done = cli("doctor", "--json")

    # Then it finds each of them, and that no env is frozen, and exits 1
    assert done.code == 1, done.err
    findings = done.json()["findings"]
    found = findings_of(done)
    assert ("gone", "dangling-symlink", "error") in found
    assert ("broken-json", "bad-kernelspec", "warning") in found
    assert ("isis4.3.0", "not-frozen", "info") in found
    assert ("nokernel", "no-kernels", "info") in found
    private = [f for f in findings if f["scope"] == "private-records" and f["kind"] == "private-records"]
    assert len(private) == 1, "one problem, one finding"
    assert private[0]["severity"] == "warning"
    assert "chmod a+r" in private[0]["message"]
    assert all(set(f) == {"scope", "kind", "severity", "message"} for f in findings)
    # ... the most severe first
    order = {"error": 0, "warning": 1, "info": 2}
    severities = [order[f["severity"]] for f in findings]
    assert severities == sorted(severities)

    # When it writes its table for a person, Then the same findings are there
    table = cli("doctor")
    assert table.code == 1
    assert f"{len(findings)} findings" in table.out
    assert "dangling-symlink" in table.out
    assert "private-records" in table.out


def test_seal_removes_the_not_frozen_finding(small: SharedInstallation, cli: Any) -> None:
    # Given a small installation in which no env is frozen
    before = cli("doctor", "--json")
    assert before.code == 0, before.out  # only info findings
    assert {(s, k) for s, k, _ in findings_of(before)} >= {(ISIS, "not-frozen"), ("isis4.2.0", "not-frozen")}

    # When one env is sealed
    sealed = cli("seal", ISIS)
    after = cli("doctor", "--json")

    # Then its not-frozen finding is gone, the others' remain
    assert sealed.code == 0, sealed.out
    assert (small.prefix(ISIS) / "conda-meta" / "frozen").is_file()
    kinds = {(s, k) for s, k, _ in findings_of(after)}
    assert (ISIS, "not-frozen") not in kinds
    assert ("isis4.2.0", "not-frozen") in kinds
    assert not any(
        k == "not-frozen" for k in (f["kind"] for f in cli("drift", ISIS, "--json").json()["findings"])
    )

    # When it is unsealed, Then the finding is back
    assert cli("unseal", ISIS).code == 0
    assert (ISIS, "not-frozen") in {(s, k) for s, k, _ in findings_of(cli("doctor", "--json"))}


def test_requests_and_usage_in_a_terminal(small: SharedInstallation, jupyter_home: Path, cli: Any) -> None:
    # Given the store the server uses by default (SQLite in the Jupyter data dir) with alice's
    # request, and launches of isis4.3.0's kernel and of an environment removed since
    store = RequestStore(f"sqlite:///{jupyter_home / 'data' / 'envshare.db'}")
    store.migrate()
    request, _ = store.create(ISIS, ["polars >=1"], "for my thesis", "alice")
    store.ingest(
        [
            make_event("launch", "alice", env=ISIS, kernel="python3", prefix="/p"),
            make_event("launch", "bob", env=ISIS, kernel="python3", prefix="/p"),
            make_event("launch", "carol", env="isis3.0.0", kernel="python3", prefix="/p"),
        ]
    )
    store.close()
    rid = str(request.id)

    # When an admin works the queue from a terminal
    listed = cli("requests", "list", "--json")
    assert (listed.code, [r["id"] for r in json.loads(listed.out)["requests"]]) == (0, [request.id])
    assert cli("requests", "approve", rid, "--comment", "next rebuild").code == 0
    assert cli("requests", "done", rid).code == 0
    shown = json.loads(cli("requests", "show", rid, "--json").out)["request"]
    # Then each decision is recorded with its actor and comment
    assert [(h["to_status"], h["comment"]) for h in shown["history"]] == [
        ("open", ""),
        ("approved", "next rebuild"),
        ("done", ""),
    ]
    assert {h["actor"] for h in shown["history"][1:]} == {pwd.getpwuid(os.getuid()).pw_name}
    # and a done request cannot be rejected any more
    refused = cli("requests", "reject", rid)
    assert refused.code == 2
    assert "done" in refused.err

    # When they look at usage
    report = json.loads(cli("usage", "--json").out)
    by_env = {e["env"]: e for e in report["envs"]}
    # Then every environment is there, never-launched ones first, gone ones marked as such
    assert report["envs"][0]["last_used"] is None
    assert by_env["isis4.2.0"] == {
        "env": "isis4.2.0",
        "present": True,
        "launches": 0,
        "users": 0,
        "last_used": None,
    }
    assert (by_env[ISIS]["launches"], by_env[ISIS]["users"], by_env[ISIS]["present"]) == (2, 2, True)
    assert (by_env["isis3.0.0"]["launches"], by_env["isis3.0.0"]["present"]) == (1, False)
    # and a kernel's launches carry the name it is listed under, when it still exists
    kernels = {(k["env"], k["kernel"]): k["kernel_name"] for k in report["launches"]}
    assert kernels == {(ISIS, "python3"): f"conda-env-{ISIS}-py", ("isis3.0.0", "python3"): None}
    text = cli("usage").out
    assert "never" in text
    assert "isis3.0.0 (no longer installed)" in text
    assert f"conda-env-{ISIS}-py" in text
