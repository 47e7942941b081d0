"""Drift on real rattler-built environments, mutated for real, against locks made from their records."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from jupyter_envshare import drift
from jupyter_envshare.discovery import Problem
from jupyter_envshare.drift import DriftEngine, DriftReport, installed_state
from jupyter_envshare.packages import PYPI, PackageRef, normalize_channel
from jupyter_envshare.sidecar import stamp
from jupyter_envshare.testing.envfactory import (
    PackageSpec,
    build_channel,
    install_env,
    installed_records,
    module_package,
    python_kernel_package,
    python_runtime_packages,
    python_xy,
    stub_package,
)
from jupyter_envshare.testing.wheels import make_wheel

from .conftest import is_root

PLAIN_FILE = "share/plain-data/table.txt"
BASE_SPECS = ["envshare-kernel-python", "drift_probe==1.0", "plain-data"]


@dataclass(frozen=True)
class ExplicitLock:
    """A conda explicit lock the test writes, with the attributes of provenance's ``LockInfo``."""

    path: str
    format: str
    sha256: str
    packages: tuple[PackageRef, ...]


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local channel: python stubs, a kernel, drift_probe 1.0 -> old-helper and 2.0 -> new-helper."""
    return build_channel(
        tmp_path_factory.mktemp("drift-channel"),
        [
            *python_runtime_packages(),
            python_kernel_package(depends=["ipykernel"]),
            module_package("drift_probe", "1.0", depends=["old-helper"]),
            module_package("drift_probe", "2.0", depends=["new-helper"]),
            stub_package("old-helper", "1.0"),
            stub_package("new-helper", "1.0"),
            # a file without a prefix placeholder: its record has no sha256_in_prefix
            PackageSpec("plain-data", "1.0", files={PLAIN_FILE: "a,b\n1,2\n"}),
        ],
    )


@pytest.fixture(scope="module")
def pkgs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package cache shared by this module's environments (installed files may hardlink into it)."""
    return tmp_path_factory.mktemp("drift-pkgs")


@pytest.fixture
def make_env(tmp_path: Path, channel: Path, pkgs_cache: Path) -> Callable[..., Path]:
    """Build (or update) ``tmp_path/envs/NAME`` from the channel, as ``conda install`` would."""

    def build(name: str, specs: Sequence[str] = tuple(BASE_SPECS), **kwargs: Any) -> Path:
        return install_env(tmp_path / "envs" / name, channel, list(specs), cache_dir=pkgs_cache, **kwargs)

    return build


def refs_of(prefix: Path) -> list[PackageRef]:
    """The environment's conda packages as py-rattler reads its records (independently of drift.py)."""
    return [
        PackageRef(
            name=r.name.normalized,
            version=str(r.version),
            build=str(r.build),
            channel=normalize_channel(str(r.channel)),
            subdir=str(r.subdir),
            url=str(r.url),
            md5=r.md5.hex() if r.md5 else "",
            sha256=r.sha256.hex() if r.sha256 else "",
        )
        for r in installed_records(prefix)
    ]


def write_lock(directory: Path, refs: Sequence[PackageRef], name: str = "env.lock.txt") -> ExplicitLock:
    """Write ``refs`` as a conda explicit file and return it as a lock."""
    lines = ["# platform: linux-64", "@EXPLICIT"]
    lines += [f"{r.url}#sha256:{r.sha256}" if r.sha256 else f"{r.url}#{r.md5}" for r in refs if r.url]
    path = directory / name
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    return ExplicitLock(str(path), "explicit", hashlib.sha256(data).hexdigest(), tuple(refs))


def own_lock(prefix: Path, edit: Callable[[list[PackageRef]], list[PackageRef]] = list) -> ExplicitLock:
    """A lock made from the environment's own records (optionally edited), beside the environment."""
    return write_lock(prefix.parent, edit(refs_of(prefix)), f"{prefix.name}.lock.txt")


def change_set(report: DriftReport) -> set[tuple[str, str]]:
    """``(kind, package)`` of every change."""
    return {(c.kind, c.package) for c in report.changes}


def finding_kinds(report: DriftReport) -> set[str]:
    """The kinds of the report's findings."""
    return {p.kind for p in report.findings}


def replace_file(path: Path, text: str) -> None:
    """Change an installed file the safe way: it may be a hardlink into the package cache."""
    path.unlink()
    path.write_text(text)


def site_packages(prefix: Path) -> Path:
    """The environment's site-packages."""
    return prefix / "lib" / f"python{python_xy()}" / "site-packages"


# -- package-level drift ------------------------------------------------------------------------------


def test_untouched_env_with_its_own_lock_is_in_sync(make_env: Callable[..., Path]) -> None:
    # Given an environment and a lock made from its own records
    prefix = make_env("clean")
    lock = own_lock(prefix)

    # When its drift is reported
    report = DriftEngine().report(prefix, lock)

    # Then it is in sync, with no changes, and the lock it was compared against is named
    assert report.status == "in-sync"
    assert report.changes == ()
    assert report.lock is not None
    assert report.lock.sha256 == lock.sha256
    assert report.deep is False
    assert not any(p.severity == "error" for p in report.findings)


def test_update_transaction_reports_version_added_and_removed(make_env: Callable[..., Path]) -> None:
    # Given an environment locked with drift_probe 1.0 (which pulls old-helper)
    prefix = make_env("updated")
    lock = own_lock(prefix)
    engine = DriftEngine()
    assert engine.status(prefix, lock) == "in-sync"

    # When an update transaction installs drift_probe 2.0 (which pulls new-helper instead)
    make_env("updated", ["drift_probe==2.0"])
    report = engine.report(prefix, lock)

    # Then exactly a version change, an added and a removed package are reported
    assert report.status == "drifted"
    assert change_set(report) == {
        ("version", "drift_probe"),
        ("added", "new-helper"),
        ("removed", "old-helper"),
    }
    version = next(c for c in report.changes if c.kind == "version")
    assert (version.locked, version.installed) == ("drift_probe-1.0-h0_0", "drift_probe-2.0-h0_0")
    # ... and the history written by the transaction is newer than the lock
    assert "history-after-lock" in finding_kinds(report)


def test_pip_install_of_a_local_wheel_is_exactly_a_pip_overlay(
    tmp_path: Path, make_env: Callable[..., Path]
) -> None:
    # Given a launchable environment (a conda-style python with bin/pip) locked as built
    prefix = make_env("pipped", python_venv=True)
    lock = own_lock(prefix)
    engine = DriftEngine()
    assert engine.status(prefix, lock) == "in-sync"

    # When a locally built wheel is pip-installed into it
    wheel = make_wheel(tmp_path / "wheels", "drift_overlay", "1.0")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(PIP_ROOT_USER_ACTION="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [str(prefix / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = engine.report(prefix, lock)

    # Then the only change is a pip overlay, and the installed state says who installed it from where
    assert report.status == "drifted"
    assert change_set(report) == {("pip-overlay", "drift_overlay")}
    assert report.changes[0].installed == "drift_overlay==1.0"
    overlay = next(p for p in engine.installed(prefix).packages if p.kind == PYPI)
    assert overlay.installer == "pip"
    assert overlay.direct_url == wheel.as_uri()

    # When the lock lists that distribution (a pixi-style lock with pypi packages)
    pypi = PackageRef(name="drift-overlay", version="1.0", kind=PYPI)
    locked_with_pypi = own_lock(prefix, lambda refs: [*refs, pypi])

    # Then it is in sync, and another locked version is a version change like a conda package's
    assert engine.report(prefix, locked_with_pypi).changes == ()
    older = own_lock(prefix, lambda refs: [*refs, replace(pypi, version="0.9")])
    assert change_set(engine.report(prefix, older)) == {("version", "drift_overlay")}


def test_lock_with_another_channel_reports_channel(make_env: Callable[..., Path]) -> None:
    # Given an environment and a lock whose drift_probe came from another channel (same artifact)
    prefix = make_env("channel")
    other = "https://conda.example.org/other-channel"

    def move(refs: list[PackageRef]) -> list[PackageRef]:
        return [
            replace(r, channel=other, url=f"{other}/noarch/{Path(r.url).name}")
            if r.name == "drift_probe"
            else r
            for r in refs
        ]

    # When drift is reported against that lock
    report = DriftEngine().report(prefix, own_lock(prefix, move))

    # Then exactly a channel change is reported, with both normalized channels
    assert change_set(report) == {("channel", "drift_probe")}
    change = report.changes[0]
    assert change.locked == other
    assert change.installed is not None
    assert change.installed.startswith("file://")


def test_rebuilt_artifact_reports_artifact(make_env: Callable[..., Path]) -> None:
    # Given a lock with the same name-version-build for plain-data but another sha256
    prefix = make_env("artifact")
    rebuilt = "ab" * 32

    def rebuild(refs: list[PackageRef]) -> list[PackageRef]:
        return [replace(r, sha256=rebuilt) if r.name == "plain-data" else r for r in refs]

    # When drift is reported
    report = DriftEngine().report(prefix, own_lock(prefix, rebuild))

    # Then exactly an artifact change is reported
    assert change_set(report) == {("artifact", "plain-data")}
    assert report.changes[0].locked == f"sha256:{rebuilt}"


def test_lock_with_an_extra_package_reports_removed(make_env: Callable[..., Path]) -> None:
    # Given a lock listing a package the environment does not have
    prefix = make_env("extra")
    extra = PackageRef(name="gdal", version="3.8.4", build="h0_0", channel="https://conda.example.org/cf")

    # When drift is reported
    report = DriftEngine().report(prefix, own_lock(prefix, lambda refs: [*refs, extra]))

    # Then exactly that package is reported removed
    assert change_set(report) == {("removed", "gdal")}
    assert report.changes[0].locked == "gdal-3.8.4-h0_0"
    assert report.changes[0].installed is None


def test_build_string_change_reports_build(make_env: Callable[..., Path]) -> None:
    # Given a lock with another build string for plain-data
    prefix = make_env("build")

    def rebuild(refs: list[PackageRef]) -> list[PackageRef]:
        return [replace(r, build="h1_1", sha256="", md5="") if r.name == "plain-data" else r for r in refs]

    # When drift is reported, Then exactly a build change is reported
    report = DriftEngine().report(prefix, own_lock(prefix, rebuild))
    assert change_set(report) == {("build", "plain-data")}


# -- deep checks --------------------------------------------------------------------------------------


def test_deep_check_finds_edited_and_deleted_files(make_env: Callable[..., Path]) -> None:
    # Given an in-sync environment
    prefix = make_env("deep")
    lock = own_lock(prefix)
    engine = DriftEngine()
    assert engine.report(prefix, lock, deep=True).status == "in-sync"

    # When a prefix-rewritten file and a plain file are edited and a kernel.json deleted
    probe = site_packages(prefix) / "drift_probe" / "__init__.py"
    replace_file(probe, probe.read_text() + "HACKED = True\n")
    plain = prefix / PLAIN_FILE
    replace_file(plain, "a,b\n1,3\n")
    kernel_json = prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    kernel_json.unlink()
    calls: list[tuple[int, int]] = []
    deep = engine.report(prefix, lock, deep=True, progress=lambda done, total: calls.append((done, total)))
    cheap = engine.report(prefix, lock)

    # Then the deep report finds exactly those files (checked against sha256_in_prefix, or the
    # package sha256 when the file has no placeholder), with progress up to every file
    assert deep.deep is True
    assert deep.status == "drifted"
    assert {(c.kind, c.package, c.path) for c in deep.changes} == {
        ("file-modified", "drift_probe", f"lib/python{python_xy()}/site-packages/drift_probe/__init__.py"),
        ("file-modified", "plain-data", PLAIN_FILE),
        ("file-missing", "envshare-kernel-python", "share/jupyter/kernels/python3/kernel.json"),
    }
    plain_change = next(c for c in deep.changes if c.package == "plain-data")
    assert plain_change.locked == "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert plain_change.installed == "sha256:" + hashlib.sha256(b"a,b\n1,3\n").hexdigest()
    assert calls[0] == (0, 3)
    assert calls[-1] == (3, 3)
    # ... while the cheap check, which hashes nothing, still sees the records in sync
    assert cheap.status == "in-sync"
    assert cheap.changes == ()


def test_deep_check_reads_records_fully(make_env: Callable[..., Path]) -> None:
    # Given a record damaged in the middle of its paths_data, its first and last lines intact
    prefix = make_env("midrecord")
    lock = own_lock(prefix)
    record = next((prefix / "conda-meta").glob("plain-data-*.json"))
    text = record.read_text()
    cut = text.index('"_path"')
    replace_file(record, text[:cut] + "<<garbage>>" + text[cut:])
    engine = DriftEngine()

    # When the cheap and the deep reports are made
    cheap = engine.report(prefix, lock)
    deep = engine.report(prefix, lock, deep=True)

    # Then the cheap one, which reads only the top-level lines, still knows the package, and the
    # deep one, which parses every record in full, reports the damage
    assert cheap.status == "in-sync"
    assert "bad-record" not in finding_kinds(cheap)
    assert any(p.kind == "bad-record" and record.name in p.message for p in deep.findings)


def test_installed_state_lists_files_with_their_hashes(make_env: Callable[..., Path]) -> None:
    # Given an environment
    prefix = make_env("files")

    # When its installed state is read with files
    state = installed_state(prefix)

    # Then each conda package lists its files, with sha256_in_prefix where the prefix was written in
    (plain,) = state.files["plain-data"]
    assert (plain.path, plain.sha256_in_prefix, plain.prefix_placeholder) == (PLAIN_FILE, "", "")
    assert plain.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    (probe,) = state.files["drift_probe"]
    assert probe.sha256_in_prefix
    assert probe.prefix_placeholder
    assert {p.name for p in state.packages} >= {"drift_probe", "old-helper", "plain-data", "python"}


# -- broken and badly published environments ----------------------------------------------------------


def test_malformed_records_become_findings_and_listing_continues(make_env: Callable[..., Path]) -> None:
    # Given an environment locked as built, whose records are then damaged: one cut in half, one
    # garbage, one a dangling link, and a JSON list where a record should be
    prefix = make_env("malformed")
    lock = own_lock(prefix)
    meta = prefix / "conda-meta"
    truncated = next(meta.glob("drift_probe-*.json"))
    text = truncated.read_text()
    replace_file(truncated, text[: len(text) // 2])
    replace_file(next(meta.glob("old-helper-*.json")), "\x00\x01 not json")
    (meta / "ghost-1.0-h0_0.json").symlink_to(meta / "nowhere.json")
    (meta / "listed-1.0-h0_0.json").write_text("[1, 2]\n")

    # When drift is reported and the installed packages listed
    report = DriftEngine().report(prefix, lock)
    state = installed_state(prefix, files=False)

    # Then each damaged record is a finding naming its file, and nothing else is disturbed: the
    # packages whose records cannot be read are not claimed removed
    bad = [p.message for p in report.findings if p.kind == "bad-record"]
    assert len(bad) == 4
    for name in ("drift_probe-1.0-h0_0.json", "old-helper-1.0-h0_0.json", "ghost-1.0", "listed-1.0"):
        assert any(name in message for message in bad), (name, bad)
    assert report.status == "in-sync"
    assert report.changes == ()
    assert {p.name for p in state.packages} >= {"plain-data", "python", "envshare-kernel-python"}
    assert "drift_probe" not in {p.name for p in state.packages}


def test_private_records_are_a_finding(make_env: Callable[..., Path]) -> None:
    # Given an environment whose records were left 0600, as rattler writes them
    prefix = make_env("private", publish=False)

    # When drift is reported
    report = DriftEngine().report(prefix, own_lock(prefix))

    # Then a finding says other users cannot read them; the comparison itself is unaffected
    private = [p for p in report.findings if p.kind == "private-records"]
    assert len(private) == 1
    assert "0600" in private[0].message
    assert report.status == "in-sync"


def reads_mode_000_files(directory: Path) -> bool:
    """Whether this process ignores permission bits (root with CAP_DAC_OVERRIDE)."""
    probe = directory / "mode-000-probe"
    probe.write_text("x")
    probe.chmod(0o000)
    try:
        probe.read_text()
    except PermissionError:
        return False
    finally:
        probe.chmod(0o600)
        probe.unlink()
    return True


def test_unreadable_record_is_a_finding(
    tmp_path: Path, make_env: Callable[..., Path], jupyter_home: Path
) -> None:
    # Given a record with mode 000 in an environment stamped with a lock made from its records
    prefix = make_env("mode000")
    lock = own_lock(prefix)
    stamp(prefix, lock=lock.path)
    record = next((prefix / "conda-meta").glob("plain-data-*.json"))
    # ... checked by `jupyter envshare drift` in a process that cannot read it: as root, one
    # without the capabilities that bypass file permissions, as an ordinary admin's would be
    command = [sys.executable, "-m", "jupyter_envshare.cli", "drift", prefix.name, "--json"]
    command += ["--env-root", str(prefix.parent)]
    bypasses = reads_mode_000_files(tmp_path)
    if is_root():
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot drop CAP_DAC_OVERRIDE for the check")
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *command]
    elif bypasses:
        pytest.skip("this process reads mode-000 files (CAP_DAC_OVERRIDE without root)")
    record.chmod(0o000)
    try:
        # When drift is reported by the command (and by the engine, where this process cannot
        # read the record either)
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        engine_report = None if bypasses else DriftEngine().report(prefix, lock)
    finally:
        record.chmod(0o644)

    # Then it is a finding naming the record, not an exception, and not a removal
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    assert any(f["kind"] == "bad-record" and record.name in f["message"] for f in report["findings"]), report
    assert report["changes"] == []
    assert report["status"] == "in-sync"
    assert done.returncode == 0
    if engine_report is not None:
        assert any(p.kind == "bad-record" and record.name in p.message for p in engine_report.findings)
        assert engine_report.changes == ()


@pytest.mark.skipif(not is_root(), reason="changing a record's owner needs root")
def test_records_owned_by_several_users_are_a_finding(make_env: Callable[..., Path]) -> None:
    # Given an environment where one record belongs to another user
    prefix = make_env("owners")
    os.chown(next((prefix / "conda-meta").glob("plain-data-*.json")), 4242, 4242)

    # When drift is reported, Then the mixed ownership is a finding
    report = DriftEngine().report(prefix, own_lock(prefix))
    assert "mixed-owners" in finding_kinds(report)


def test_publishing_health_findings_follow_the_disk(make_env: Callable[..., Path]) -> None:
    # Given a correctly permissioned environment, checked once
    prefix = make_env("health")
    lock = own_lock(prefix)
    engine = DriftEngine()
    first = finding_kinds(engine.report(prefix, lock))
    assert "not-frozen" in first
    assert not first & {"writable-env", "history-after-lock", "private-records"}

    # When the prefix is made group-writable, frozen, and its history touched after the lock
    prefix.chmod(0o775)
    (prefix / "conda-meta" / "frozen").write_text("{}\n")
    later = Path(lock.path).stat().st_mtime + 60
    os.utime(prefix / "conda-meta" / "history", (later, later))
    kinds = finding_kinds(engine.report(prefix, lock))

    # Then the same engine reports the new state of things
    assert "writable-env" in kinds
    assert "history-after-lock" in kinds
    assert "not-frozen" not in kinds


def test_unlocked_and_unavailable(tmp_path: Path, make_env: Callable[..., Path]) -> None:
    # Given an environment without a lock, and a prefix that does not exist
    prefix = make_env("nolock")
    engine = DriftEngine()

    # When their drift is reported
    unlocked = engine.report(prefix, None)
    missing = engine.report(tmp_path / "envs" / "gone", None)

    # Then the first is unlocked (no changes), the second unavailable with the reason
    assert (unlocked.status, unlocked.changes, unlocked.lock) == ("unlocked", (), None)
    assert missing.status == "unavailable"
    assert [p.kind for p in missing.findings] == ["unavailable"]
    assert engine.status(tmp_path / "envs" / "gone", own_lock(prefix)) == "unavailable"


def test_report_json_has_the_rest_shape(make_env: Callable[..., Path]) -> None:
    # Given a drifted environment
    prefix = make_env("json")
    extra = PackageRef(name="gdal", version="3.8.4", build="h0_0")
    lock = own_lock(prefix, lambda refs: [*refs, extra])

    # When its report is rendered as JSON
    doc = json.loads(json.dumps(DriftEngine().report(prefix, lock).as_json()))

    # Then it has the shape of GET envs/{name}/drift
    assert set(doc) == {"status", "checked_at", "lock", "changes", "findings", "deep"}
    assert doc["lock"] == {"path": lock.path, "format": "explicit", "sha256": lock.sha256}
    assert doc["changes"] == [
        {"kind": "removed", "package": "gdal", "locked": "gdal-3.8.4-h0_0", "installed": None}
    ]
    assert doc["checked_at"].endswith("+00:00")
    assert all(set(f) == {"kind", "message", "severity"} for f in doc["findings"])


# -- the engine's cache -------------------------------------------------------------------------------


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every conda-meta record the engine parses (a spy around the real parser)."""
    calls: list[str] = []
    real = drift._parse_record

    def spy(path: str, *, with_files: bool = False) -> Any:
        calls.append(Path(path).name)
        return real(path, with_files=with_files)

    monkeypatch.setattr(drift, "_parse_record", spy)
    return calls


def test_records_are_parsed_only_when_they_change(
    make_env: Callable[..., Path], parse_calls: list[str]
) -> None:
    # Given an engine that reported an environment once
    prefix = make_env("cached")
    lock = own_lock(prefix)
    engine = DriftEngine()
    engine.report(prefix, lock)
    first = len(parse_calls)
    assert first == len(list((prefix / "conda-meta").glob("*.json")))

    # When nothing changed, Then further reports and statuses parse nothing
    for _ in range(3):
        assert engine.status(prefix, lock) == "in-sync"
    engine.report(prefix, lock)
    assert len(parse_calls) == first

    # When an update transaction replaces two records, Then only the new records are parsed
    make_env("cached", ["drift_probe==2.0"])
    assert engine.status(prefix, lock) == "drifted"
    assert sorted(parse_calls[first:]) == ["drift_probe-2.0-h0_0.json", "new-helper-1.0-h0_0.json"]

    # When a record is rewritten in place (same name), Then the digest notices it
    plain = next((prefix / "conda-meta").glob("plain-data-*.json"))
    doc = json.loads(plain.read_text())
    doc["version"] = "1.1"
    plain.write_text(json.dumps(doc, indent=2))
    report = engine.report(prefix, lock)
    assert ("version", "plain-data") in change_set(report)


def test_status_sees_transactions_at_once_and_in_place_rewrites_after_the_interval(
    make_env: Callable[..., Path],
) -> None:
    # Given an engine that trusts record stats for an hour, and one that never does
    prefix = make_env("interval")
    lock = own_lock(prefix)
    lazy, exact = DriftEngine(record_stat_interval=3600), DriftEngine(record_stat_interval=0)
    assert lazy.status(prefix, lock) == exact.status(prefix, lock) == "in-sync"

    # When an update transaction adds and removes records, Then both statuses see it at once
    make_env("interval", ["drift_probe==2.0"])
    assert lazy.status(prefix, lock) == exact.status(prefix, lock) == "drifted"
    relock = own_lock(prefix)
    assert lazy.status(prefix, relock) == exact.status(prefix, relock) == "in-sync"

    # When a record is rewritten in place (same name, same inode, same directory)
    plain = next((prefix / "conda-meta").glob("plain-data-*.json"))
    doc = json.loads(plain.read_text())
    doc["sha256"] = "cd" * 32
    with plain.open("w") as fh:
        json.dump(doc, fh, indent=2)

    # Then the exact status and any report see it, and the lazy status trusts its stats until a
    # report (which stats every record) refreshes them
    assert exact.status(prefix, relock) == "drifted"
    assert lazy.status(prefix, relock) == "in-sync"
    assert change_set(lazy.report(prefix, relock)) == {("artifact", "plain-data")}
    assert lazy.status(prefix, relock) == "drifted"


def test_concurrent_statuses_agree(make_env: Callable[..., Path]) -> None:
    # Given one engine and an environment
    prefix = make_env("threads")
    lock = own_lock(prefix)
    engine = DriftEngine()
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                results.append(engine.status(prefix, lock))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    # When many threads ask at once
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then all of them get the same answer and none fails
    assert errors == []
    assert set(results) == {"in-sync"}
    assert len(results) == 160


def test_lock_problems_are_passed_on_as_findings(make_env: Callable[..., Path]) -> None:
    # Given a lock object that carries problems of its own (as provenance's LockInfo does)
    prefix = make_env("lockproblems")

    @dataclass(frozen=True)
    class LockWithProblems(ExplicitLock):
        problems: tuple[Problem, ...] = ()

    base = own_lock(prefix)
    lock = LockWithProblems(
        base.path, base.format, base.sha256, base.packages, (Problem("bad-lock", "line 3"),)
    )

    # When drift is reported, Then the lock's problems are among the findings
    assert "bad-lock" in finding_kinds(DriftEngine().report(prefix, lock))
