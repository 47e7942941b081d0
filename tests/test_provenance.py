"""Provenance of real py-rattler-built environments: history, lock files, sidecar, spec and git."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rattler import PrefixRecord

from jupyter_envshare.discovery import SharedEnv
from jupyter_envshare.history import parse_history, read_history
from jupyter_envshare.lockfiles import (
    CONDA_LOCK,
    EXPLICIT,
    LOCK_FORMATS,
    PIXI,
    package_ref,
    read_lock,
    write_lock,
)
from jupyter_envshare.packages import PYPI, PackageRef
from jupyter_envshare.provenance import read_provenance, spec_drift
from jupyter_envshare.sidecar import Sidecar, read_git, read_sidecar, stamp, write_sidecar
from jupyter_envshare.testing.envfactory import (
    DEFAULT_CONDA_VERSION,
    build_channel,
    install_env,
    module_package,
    python_kernel_package,
    python_runtime_packages,
)
from jupyter_envshare.testing.envfactory import read_history as factory_history
from jupyter_envshare.testing.layouts import SharedInstallation, build_isis_installation

from . import lockfiles

ENVIRONMENT_YML = """\
name: isis4.3.0
channels:
  - usgs-astrogeology
  - conda-forge
dependencies:
  - isis_marker ==4.2.0
  - envshare-kernel-python
  - pip
  - pip:
      - astropy-healpix==1.0.3
"""


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> SharedInstallation:
    """A small isis installation (not launchable: only its records and history matter here)."""
    return build_isis_installation(
        tmp_path_factory.mktemp("prov-site"), versions=("4.2.0", "4.3.0"), launchable=[]
    )


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local channel with the python runtime stubs, a kernel package and two marker versions."""
    return build_channel(
        tmp_path_factory.mktemp("prov-channel"),
        [
            *python_runtime_packages(),
            python_kernel_package(depends=["ipykernel"]),
            module_package("isis_marker", "4.2.0", marker="isis4.2.0"),
            module_package("isis_marker", "4.3.0", marker="isis4.3.0"),
        ],
    )


@pytest.fixture
def prefix(tmp_path: Path, channel: Path) -> Path:
    """A fresh env of this test's own: the kernel package and isis_marker 4.2.0."""
    return install_env(
        tmp_path / "envs" / "isis",
        channel,
        ["envshare-kernel-python", "isis_marker==4.2.0"],
        cache_dir=tmp_path / "pkgs",
    )


def records_of(prefix: Path) -> list[PackageRef]:
    """The env's installed records, read by rattler, as package refs."""
    return [package_ref(PrefixRecord.from_path(p)) for p in sorted((prefix / "conda-meta").glob("*.json"))]


def identity(refs: list[PackageRef] | tuple[PackageRef, ...], *, md5: bool = True) -> list[tuple[str, ...]]:
    """What a lock must keep of each package, sorted."""
    return sorted(
        (r.kind, r.name, r.version, r.build, r.channel, r.subdir, r.url, r.md5 if md5 else "", r.sha256)
        for r in refs
    )


def shared_env(
    prefix: Path, *, sidecar: Mapping[str, Any] | None = None, catalog: Mapping[str, Any] | None = None
) -> SharedEnv:
    """The discovery record of ``prefix``, as the engine would make it."""
    return SharedEnv(
        name=prefix.name,
        path=str(prefix),
        prefix=str(prefix),
        source="test",
        sidecar=sidecar,
        catalog=catalog,
    )


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with no user or system configuration (test setup only)."""
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Admin",
        "GIT_AUTHOR_EMAIL": "admin@example.org",
        "GIT_COMMITTER_NAME": "Admin",
        "GIT_COMMITTER_EMAIL": "admin@example.org",
    }
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def spec_repo(tmp_path: Path) -> Path:
    """A git repository with environment.yml committed on main and a remote with credentials in its URL."""
    repo = tmp_path / "site-envs"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "envs").mkdir()
    (repo / "envs" / "environment.yml").write_text(ENVIRONMENT_YML)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "isis 4.3.0 spec")
    git(repo, "remote", "add", "origin", "https://builder:s3cret-token@git.example.org/site/envs.git")
    return repo


# -- history ----------------------------------------------------------------------------------


def test_history_of_a_real_env_parses_into_its_transactions(installation: SharedInstallation) -> None:
    # Given the newest isis env, created and then given its kernel in a second `conda install`
    prefix = installation.env_prefixes["isis4.3.0"]

    # When its history is parsed
    transactions, problems = read_history(prefix)

    # Then there are the two blocks the factory wrote, with dates, commands, tool and packages
    expected = factory_history(prefix)
    assert problems == ()
    assert len(transactions) == 2
    for txn, block in zip(transactions, expected, strict=True):
        assert txn.date == block.timestamp
        assert txn.command == block.command
        assert txn.tool == "conda"
        assert txn.tool_version == DEFAULT_CONDA_VERSION
        assert txn.added == tuple(sorted(block.added))
        assert txn.update_specs == block.update_specs
    assert "local::isis-4.3.0-h0_0" in transactions[0].added
    assert transactions[1].added == ("local::envshare-kernel-python-1.0-h0_0",)
    assert transactions[1].removed == ()


def test_an_update_transaction_lists_what_it_removed_and_added(
    tmp_path: Path, channel: Path, prefix: Path
) -> None:
    # Given an env updated from isis_marker 4.2.0 to 4.3.0 by a second install
    install_env(prefix, channel, ["isis_marker==4.3.0"], cache_dir=tmp_path / "pkgs")

    # When its history is read
    transactions, problems = read_history(prefix)

    # Then the last transaction is the update, with its `-` and `+` lines and requested spec
    assert problems == ()
    assert [t.command.split()[1] for t in transactions] == ["create", "install"]
    update = transactions[-1]
    assert update.removed == ("local::isis_marker-4.2.0-h0_0",)
    assert update.added == ("local::isis_marker-4.3.0-h0_0",)
    assert update.update_specs == ("isis_marker==4.3.0",)


def test_micromamba_and_mamba_histories_name_their_tool() -> None:
    # Given histories as libmamba and mamba 1.x write them
    micromamba, micro_problems = parse_history(lockfiles.MICROMAMBA_HISTORY)
    mamba, mamba_problems = parse_history(lockfiles.MAMBA1_HISTORY)

    # Then the tool comes from the command, not from the `# conda version:` line they all write
    assert micro_problems == mamba_problems == ()
    assert [t.tool for t in micromamba] == ["micromamba", "micromamba"]
    assert micromamba[0].tool_version == ""  # libmamba's "3.8.0" is not micromamba's version
    assert micromamba[0].conda_version == "3.8.0"
    assert micromamba[0].update_specs == ("python=3.12", "numpy")
    assert micromamba[1].neutered_specs == ("python=3.12.3",)
    assert micromamba[1].removed == (
        "https://conda.example.org/conda-forge/linux-64::numpy-1.26.4-py312heda63a1_0",
    )
    assert [t.tool for t in mamba] == ["mamba", "conda"]
    assert (mamba[0].tool_version, mamba[1].tool_version) == ("", "23.3.1")
    assert mamba[1].remove_specs == ("isis",)


def test_a_history_with_garbage_blocks_keeps_the_good_ones_and_names_each_bad_line() -> None:
    # Given a history with text before the first block, an undated block and a pasted traceback
    transactions, problems = parse_history(lockfiles.GARBLED_HISTORY, "isis4.3.0/conda-meta/history")

    # Then every block is kept (the undated one without a date) and nothing raised
    assert [t.date for t in transactions] == [
        datetime(2025, 3, 14, 13, 51, 4),
        None,
        datetime(2025, 3, 20, 9, 0),
    ]
    assert transactions[1].added == ("conda-forge/linux-64::numpy-2.0.0-py312h0_0",)
    assert transactions[2].update_specs == ("scipy",)
    # And each bad stretch is one problem that says where it is and what it is
    messages = [p.message for p in problems]
    assert len(messages) == 5
    assert all(p.kind == "bad-history" and p.severity == "warning" for p in problems)
    assert messages[0].startswith("isis4.3.0/conda-meta/history, line 1: text before the first")
    assert "line 7: block date is not YYYY-MM-DD HH:MM:SS" in messages[1]
    assert "lines 10-12: not conda history (first: 'Traceback (most recent call last):')" in messages[2]
    assert "line 13: not a channel::name-version-build package" in messages[3]
    assert "line 14: spec list is not a list of strings" in messages[4]


def test_binary_noise_in_a_history_is_a_problem_not_an_exception(tmp_path: Path, prefix: Path) -> None:
    # Given a history with random bytes appended
    history = prefix / "conda-meta" / "history"
    history.write_bytes(history.read_bytes() + bytes(range(256)) * 4)

    # When it is read
    transactions, problems = read_history(prefix)

    # Then the real block is still there and the noise is reported
    assert len(transactions) == 1
    assert problems
    assert all(p.kind == "bad-history" for p in problems)


# -- lock files -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LOCK_FORMATS)
def test_a_lock_written_from_an_envs_records_reads_back_equal(tmp_path: Path, prefix: Path, fmt: str) -> None:
    # Given the env's installed records, as rattler reads them
    refs = records_of(prefix)

    # When they are written as a lock file and read back
    info = write_lock(refs, fmt, tmp_path / f"env.{fmt}.lock")

    # Then names, versions, builds, channels, URLs and hashes survive (explicit keeps one hash: sha256)
    assert info.problems == ()
    assert info.format == fmt
    assert info.platforms == ("linux-64",)
    assert identity(info.packages, md5=fmt != EXPLICIT) == identity(refs, md5=fmt != EXPLICIT)
    assert info.channels == (refs[0].channel,)
    assert info.channels[0].startswith("file://")
    assert read_lock(info.path, "linux-64") == info


@pytest.mark.parametrize("fmt", [CONDA_LOCK, PIXI])
def test_pypi_packages_round_trip_where_the_format_holds_them(tmp_path: Path, prefix: Path, fmt: str) -> None:
    # Given the env's records plus a PyPI package with a known URL and hash
    wheel = PackageRef(
        name="requests",
        version="2.32.3",
        kind=PYPI,
        url=lockfiles.REQUESTS_URL,
        sha256=lockfiles.REQUESTS_SHA256,
    )
    refs = [*records_of(prefix), wheel]

    # When written and read back
    info = write_lock(refs, fmt, tmp_path / f"env.{fmt}.lock")

    # Then the PyPI package is there; pixi locks it by URL only (py-rattler cannot write its hash)
    pypi = [p for p in info.packages if p.kind == PYPI]
    assert [(p.name, p.version, p.url) for p in pypi] == [("requests", "2.32.3", lockfiles.REQUESTS_URL)]
    if fmt == CONDA_LOCK:
        assert info.problems == ()
        assert pypi[0].sha256 == lockfiles.REQUESTS_SHA256
    else:
        assert [p.kind for p in info.problems] == ["lock-left-out"]
        assert "cannot write the sha256 of PyPI packages" in info.problems[0].message


def test_an_explicit_lock_leaves_out_pypi_packages_and_says_so(tmp_path: Path, prefix: Path) -> None:
    # Given records plus a PyPI package
    refs = [
        *records_of(prefix),
        PackageRef(name="requests", version="2.32.3", kind=PYPI, url="https://x/r.whl"),
    ]

    # When written as an explicit file
    info = write_lock(refs, EXPLICIT, tmp_path / "env.txt")

    # Then the conda packages are in it and the PyPI one is named as left out
    assert len(info.packages) == len(refs) - 1
    assert [p.message for p in info.problems] == [
        "requests==2.32.3 is not in the lock file: explicit files list conda packages only."
    ]


def test_a_hand_written_conda_lock_v1_file_reads(tmp_path: Path) -> None:
    # Given a conda-lock v1 file with conda and pip packages
    path = lockfiles.write(tmp_path, "conda-lock.yml", lockfiles.CONDA_LOCK_V1)

    # When it is read for linux-64
    info = read_lock(path)

    # Then every package is there with its channel (normalized), build and hashes
    assert info.format == CONDA_LOCK
    assert info.problems == ()
    assert info.environment is None
    assert info.channels == ("conda-forge",)
    by_name = {p.name: p for p in info.packages}
    python = by_name["python"]
    assert (python.version, python.build, python.subdir) == ("3.12.8", "h9e4cc4f_1_cpython", "linux-64")
    assert python.channel == "https://conda.example.org/conda-forge"
    assert (python.md5, python.sha256) == (lockfiles.PYTHON_MD5, lockfiles.PYTHON_SHA256)
    assert by_name["tzdata"].subdir == "noarch"
    assert by_name["requests"].kind == PYPI
    assert by_name["requests"].sha256 == lockfiles.REQUESTS_SHA256


def test_a_hand_written_explicit_file_reads_md5_and_sha256_fragments(tmp_path: Path) -> None:
    # Given an explicit file, one line with a sha256 fragment and one with an md5
    path = lockfiles.write(tmp_path, "explicit.txt", lockfiles.EXPLICIT)

    # When it is read
    info = read_lock(path)

    # Then both packages are there with the hash each line carries
    assert info.format == EXPLICIT
    assert info.problems == ()
    assert [(p.name, p.version, p.build, p.md5, p.sha256) for p in info.packages] == [
        ("python", "3.12.8", "h9e4cc4f_1_cpython", "", lockfiles.PYTHON_SHA256),
        ("tzdata", "2025a", "h78e105d_0", lockfiles.TZDATA_MD5, ""),
    ]
    assert info.packages[0].url == lockfiles.PYTHON_URL
    assert info.channels == ("https://conda.example.org/conda-forge",)


def test_a_pixi_v6_lock_reads_per_environment_and_platform(tmp_path: Path) -> None:
    # Given a pixi.lock of format 6 with two environments
    path = lockfiles.write(tmp_path, "pixi.lock", lockfiles.PIXI_V6)

    # When each environment is read for linux-64
    default = read_lock(path, "linux-64", "default")
    docs = read_lock(path, "linux-64", "docs")

    # Then each has its own packages, PyPI hashes included
    assert default.format == PIXI
    assert default.environment == "default"
    assert default.platforms == ("linux-64", "osx-arm64")
    assert sorted((p.kind, p.name) for p in default.packages) == [
        ("conda", "python"),
        ("conda", "tzdata"),
        ("pypi", "requests"),
    ]
    requests = next(p for p in default.packages if p.kind == PYPI)
    assert requests.sha256 == lockfiles.REQUESTS_SHA256
    assert [p.name for p in docs.packages] == ["tzdata"]
    assert default.channels == docs.channels == ("https://conda.example.org/conda-forge",)


@pytest.mark.parametrize("fmt", LOCK_FORMATS)
def test_a_conda_lock_file_converts_to_every_format(tmp_path: Path, fmt: str) -> None:
    # Given the packages of a hand-written conda-lock v1 file (conda-forge URLs, a PyPI wheel)
    source = read_lock(lockfiles.write(tmp_path, "conda-lock.yml", lockfiles.CONDA_LOCK_V1))

    # When they are written in another format
    info = write_lock(source.packages, fmt, tmp_path / f"converted.{fmt}")

    # Then the conda packages are unchanged; the PyPI one survives where the format holds it
    conda = [p for p in source.packages if p.kind != PYPI]
    assert identity([p for p in info.packages if p.kind != PYPI], md5=fmt != EXPLICIT) == identity(
        conda, md5=fmt != EXPLICIT
    )
    assert [p.name for p in info.packages if p.kind == PYPI] == ([] if fmt == EXPLICIT else ["requests"])
    assert all(p.kind == "lock-left-out" for p in info.problems)


# -- malformed lock files ---------------------------------------------------------------------


def test_an_explicit_file_with_bad_lines_keeps_the_good_ones(tmp_path: Path) -> None:
    # Given an explicit file with a spec, a URL that is no package and a bad hash among good lines
    path = lockfiles.write(tmp_path, "explicit.txt", lockfiles.EXPLICIT_WITH_BAD_LINES)

    # When it is read
    info = read_lock(path)

    # Then the two good lines are packages and each bad line is a warning with its line number
    assert [p.name for p in info.packages] == ["python", "tzdata"]
    assert info.readable
    assert [p.kind for p in info.problems] == ["bad-lock-line"] * 3
    assert [p.message.split(": ", 1)[0] for p in info.problems] == [
        f"{path}, line 4",
        f"{path}, line 5",
        f"{path}, line 6",
    ]
    assert "not a package URL: 'numpy>=1.26'" in info.problems[0].message
    assert "not a conda package URL" in info.problems[1].message
    assert "'#not-a-hash' is neither an md5 nor a sha256:<hex> fragment" in info.problems[2].message


@pytest.mark.parametrize(
    ("name", "text", "has"),
    [
        ("conda-lock.yml", lockfiles.CONDA_LOCK_V1_OSX, "osx-arm64"),
        ("explicit.txt", lockfiles.EXPLICIT_OSX, "osx-arm64"),
        ("pixi.lock", lockfiles.PIXI_V6, "linux-64, osx-arm64"),
    ],
)
def test_a_lock_for_another_platform_says_which_it_has(
    tmp_path: Path, name: str, text: str, has: str
) -> None:
    # Given a lock file with nothing for the platform asked for
    path = lockfiles.write(tmp_path, name, text)
    wanted = "win-64" if name == "pixi.lock" else "linux-64"

    # When it is read
    info = read_lock(path, wanted)

    # Then it has no packages and one error naming the platforms it does have
    assert info.packages == ()
    assert not info.readable
    assert [p.message for p in info.problems] == [
        f"Lock file {path} has no packages for {wanted} (has: {has})."
    ]


def test_a_truncated_conda_lock_file_is_a_problem_with_a_line_number(tmp_path: Path) -> None:
    # Given a conda-lock file cut off in the middle of a quoted value
    text = lockfiles.CONDA_LOCK_V1
    cut = text.index("'>=3.4,<4.0a0'") + 5
    path = lockfiles.write(tmp_path, "conda-lock.yml", text[:cut])

    # When it is read
    info = read_lock(path)

    # Then it reads as an empty lock with a message pointing at where the YAML breaks
    assert info.format == CONDA_LOCK
    assert info.packages == ()
    assert len(info.problems) == 1
    message = info.problems[0].message
    assert message.startswith(f"Lock file {path} is not valid YAML (line ")
    assert "is it truncated?" in message


def test_a_conda_lock_file_cut_at_a_line_end_is_still_a_problem(tmp_path: Path) -> None:
    # Given a conda-lock file cut between two lines (valid YAML, incomplete lock)
    text = lockfiles.CONDA_LOCK_V1
    path = lockfiles.write(tmp_path, "conda-lock.yml", text[: text.index("  hash:\n")])

    # When it is read
    info = read_lock(path)

    # Then rattler's complaint is passed on
    assert info.packages == ()
    assert info.problems[0].kind == "bad-lock"
    assert "cannot be read as a conda-lock v1 file" in info.problems[0].message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not text"),
        (b"just some notes\nabout the env\n", "is in no format jupyter-envshare reads"),
        (b"version: 6\nenvironments: [unclosed\n", "is not valid YAML (line 3"),
    ],
)
def test_garbled_lock_files_give_an_empty_lock_and_a_problem(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    # Given a file that is no lock
    path = tmp_path / "env.lock"
    path.write_bytes(content)

    # When it is read
    info = read_lock(path)

    # Then nothing raised: no packages, one problem
    assert info.packages == ()
    assert len(info.problems) == 1
    assert expected in info.problems[0].message


def test_a_missing_lock_file_is_a_problem(tmp_path: Path) -> None:
    # When a lock that does not exist is read
    info = read_lock(tmp_path / "nope.lock")

    # Then the problem says so
    assert (
        info.problems[0].message
        == f"Lock file {tmp_path / 'nope.lock'} cannot be read: No such file or directory."
    )


# -- sidecar, stamp and git -------------------------------------------------------------------


def test_stamp_with_git_records_remote_and_commit(prefix: Path, spec_repo: Path, tmp_path: Path) -> None:
    # Given a spec committed in a git repository, and a lock of the env
    spec = spec_repo / "envs" / "environment.yml"
    lock = write_lock(records_of(prefix), CONDA_LOCK, tmp_path / "conda-lock.yml")

    # When the env is stamped with --git
    sidecar = stamp(prefix, spec=spec, lock=Path(lock.path), git=True)

    # Then the sidecar has the remote (credentials stripped) and HEAD commit, as git itself says
    assert sidecar.git is not None
    assert sidecar.git.remote_url == "https://git.example.org/site/envs.git"
    assert sidecar.git.sha == git(spec_repo, "rev-parse", "HEAD")
    # And the hashes, format, builder and time, written to conda-meta/envshare and read back equal
    assert sidecar.lock_format == CONDA_LOCK
    assert sidecar.spec_sha256 == read_provenance(shared_env(prefix)).spec.sha256  # type: ignore[union-attr]
    assert sidecar.builder is not None
    assert sidecar.builder.tool == "conda"
    assert sidecar.builder.user
    assert sidecar.built_at is not None
    assert abs((datetime.now(timezone.utc) - sidecar.built_at).total_seconds()) < 60
    assert read_sidecar(prefix) == (sidecar, ())
    raw = json.loads((prefix / "conda-meta" / "envshare").read_text())
    assert raw["built_at"].endswith("Z")
    assert raw["git"] == {"remote_url": "https://git.example.org/site/envs.git", "sha": sidecar.git.sha}
    assert not list((prefix / "conda-meta").glob("*envshare*.tmp"))


def test_git_is_read_from_packed_refs_and_worktrees(spec_repo: Path, tmp_path: Path) -> None:
    # Given the repository's refs packed, and a second worktree on another branch with a new commit
    head = git(spec_repo, "rev-parse", "HEAD")
    git(spec_repo, "pack-refs", "--all")
    worktree = tmp_path / "wt"
    git(spec_repo, "worktree", "add", "-q", "-b", "next", str(worktree))
    (worktree / "envs" / "environment.yml").write_text(ENVIRONMENT_YML + "  - scipy\n")
    git(worktree, "commit", "-q", "-am", "add scipy")

    # When each checkout's spec is read
    main_info = read_git(spec_repo / "envs" / "environment.yml")
    next_info = read_git(worktree / "envs" / "environment.yml")

    # Then each has its own HEAD, and both the shared remote
    assert main_info.sha == head
    assert next_info.sha == git(worktree, "rev-parse", "HEAD") != head
    assert main_info.remote_url == next_info.remote_url == "https://git.example.org/site/envs.git"


def test_stamp_refuses_bad_input_clearly(tmp_path: Path, prefix: Path) -> None:
    # Given a spec outside any repository and a file that is no lock
    spec = lockfiles.write(tmp_path, "environment.yml", ENVIRONMENT_YML)
    notes = lockfiles.write(tmp_path, "notes.txt", "not a lock\n")

    # Then each misuse raises an error that says what is wrong
    with pytest.raises(ValueError, match="is not inside a git repository"):
        stamp(prefix, spec=spec, git=True)
    with pytest.raises(ValueError, match="is in no lock format"):
        stamp(prefix, lock=notes)
    with pytest.raises(FileNotFoundError, match="Cannot read the spec file"):
        stamp(prefix, spec=tmp_path / "missing.yml")
    with pytest.raises(FileNotFoundError, match="has no conda-meta directory"):
        stamp(tmp_path, spec=spec)
    with pytest.raises(ValueError, match="spec_sha256 must be 64"):
        write_sidecar(prefix, Sidecar(spec_sha256="abc"))
    with pytest.raises(ValueError, match="time zone"):
        write_sidecar(prefix, Sidecar(built_at=datetime(2025, 3, 14)))
    # And nothing was written
    assert not (prefix / "conda-meta" / "envshare").exists()


def test_a_sidecar_that_is_not_json_is_a_problem(prefix: Path) -> None:
    # Given a sidecar an editor left half-written
    (prefix / "conda-meta" / "envshare").write_text('{"spec_path": "environment.yml", "lock_')

    # When it is read, alone and as part of the provenance
    sidecar, problems = read_sidecar(prefix)
    prov = read_provenance(shared_env(prefix))

    # Then there is no sidecar and a problem that says where the JSON breaks and what to do
    assert sidecar is None
    assert len(problems) == 1
    assert problems[0].kind == "bad-sidecar"
    assert "is not JSON (Unterminated string starting at: line 1, column 34)" in problems[0].message
    assert "stamp the environment again" in problems[0].message
    assert problems[0] in prov.problems
    assert prov.sidecar is None
    assert prov.status == "unlocked"


def test_sidecar_fields_of_the_wrong_type_are_named_and_the_rest_kept(prefix: Path) -> None:
    # Given a sidecar with a numeric hash, an unknown lock format and a bad time
    doc = {"spec_path": "/x/environment.yml", "spec_sha256": 42, "lock_format": "poetry", "built_at": "soon"}
    (prefix / "conda-meta" / "envshare").write_text(json.dumps(doc))

    # When it is read
    sidecar, problems = read_sidecar(prefix)

    # Then the good field is kept and each bad one named
    assert sidecar is not None
    assert sidecar.spec_path == "/x/environment.yml"
    assert (sidecar.spec_sha256, sidecar.lock_format, sidecar.built_at) == (None, None, None)
    assert len(problems) == 3
    assert "'spec_sha256' must be a string" in problems[0].message


# -- provenance -------------------------------------------------------------------------------


def test_provenance_of_a_stamped_env(prefix: Path, tmp_path: Path) -> None:
    # Given a spec kept inside the prefix and a pixi lock elsewhere, stamped
    spec = prefix / "conda-meta" / "environment.yml"  # a site convention: the spec travels with the env
    spec.write_text(ENVIRONMENT_YML)
    lock = write_lock(records_of(prefix), PIXI, tmp_path / "pixi.lock")
    sidecar = stamp(prefix, spec=spec, lock=Path(lock.path), tool="conda", tool_version="24.11.3")

    # When its provenance is read through the discovery record
    prov = read_provenance(
        shared_env(prefix, sidecar=json.loads((prefix / "conda-meta/envshare").read_text()))
    )

    # Then spec, lock, channels, builder and history all come through
    assert sidecar.spec_path == "conda-meta/environment.yml"  # inside the prefix: stored relative
    assert prov.problems == ()
    assert prov.sidecar_source == "sidecar"
    assert prov.spec is not None
    assert prov.spec.name == "isis4.3.0"
    assert prov.spec.channels == ("usgs-astrogeology", "conda-forge")
    assert prov.spec.dependencies == ("isis_marker ==4.2.0", "envshare-kernel-python", "pip")
    assert prov.spec.pip == ("astropy-healpix==1.0.3",)
    assert prov.lock is not None
    assert prov.lock.format == PIXI
    assert len(prov.lock.packages) == len(records_of(prefix))
    assert (prov.channels, prov.channels_source) == (lock.channels, "lock")
    assert prov.builder is not None
    assert (prov.builder.tool, prov.builder.tool_version) == ("conda", "24.11.3")
    assert prov.built_at == sidecar.built_at
    assert len(prov.history) == 1
    assert prov.status == ""
    assert spec_drift(prov) is None


def test_provenance_without_sidecar_still_tells_history_owners_and_times(
    installation: SharedInstallation,
) -> None:
    # Given an env nobody stamped
    prefix = installation.env_prefixes["isis4.3.0"]

    # When its provenance is read
    prov = read_provenance(shared_env(prefix))

    # Then it is unlocked, and history, record owners and times are what can be learned
    assert prov.status == "unlocked"
    assert prov.sidecar is None
    assert prov.problems == ()
    assert len(prov.history) == 2
    assert prov.record_count == len(list((prefix / "conda-meta").glob("*.json")))
    assert prov.record_owners == frozenset({pwd.getpwuid(os.geteuid()).pw_name})
    assert prov.record_times is not None
    assert prov.record_times[0] <= prov.record_times[1]
    assert prov.channels == (installation.channel_dir.as_uri(),)
    assert prov.channels_source == "records"
    assert prov.builder is not None
    assert prov.builder.tool == "conda"
    assert prov.built_at is not None
    assert prov.built_at.replace(tzinfo=None) == prov.history[0].date


def test_the_catalog_carries_provenance_for_an_unwritable_prefix(prefix: Path, tmp_path: Path) -> None:
    # Given a catalog entry with the sidecar's fields (spec/lock by their short names)
    spec = lockfiles.write(tmp_path, "environment.yml", ENVIRONMENT_YML)
    lock = write_lock(records_of(prefix), EXPLICIT, tmp_path / "explicit.txt")
    entry = {
        "name": "isis",
        "prefix": str(prefix),
        "owner": "gis-admins",
        "spec": str(spec),
        "lock": lock.path,
    }

    # When the provenance is read with it
    prov = read_provenance(shared_env(prefix, catalog=entry))

    # Then spec and lock come from the catalog
    assert prov.sidecar_source == "catalog"
    assert prov.spec is not None
    assert prov.spec.path == str(spec)
    assert prov.lock is not None
    assert prov.lock.format == EXPLICIT
    assert prov.status == ""
    assert prov.problems == ()


def test_a_pixi_environment_is_described_by_its_marker_and_lock(prefix: Path, tmp_path: Path) -> None:
    # Given an env with pixi's conda-meta/pixi naming a manifest whose pixi.lock sits beside it
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    manifest = lockfiles.write(
        workspace, "pixi.toml", '[workspace]\nname = "isis"\nchannels = ["conda-forge"]\n'
    )
    write_lock(records_of(prefix), PIXI, workspace / "pixi.lock", environment="gpu")
    marker = {
        "manifest_path": str(manifest),
        "environment_name": "gpu",
        "pixi_version": "0.41.4",
        "environment_lock_file_hash": "4f36ee620f10329d",
    }
    (prefix / "conda-meta" / "history").unlink()  # pixi writes no history
    (prefix / "conda-meta" / "pixi").write_text(json.dumps(marker))

    # When its provenance is read
    prov = read_provenance(shared_env(prefix))

    # Then the manifest is the spec, the lock is read for the marker's environment, pixi built it
    assert prov.pixi is not None
    assert prov.spec is not None
    assert prov.spec.path == str(manifest)
    assert prov.lock is not None
    assert prov.lock.environment == "gpu"
    assert len(prov.lock.packages) == len(records_of(prefix))
    assert prov.builder is not None
    assert (prov.builder.tool, prov.builder.tool_version) == ("pixi", "0.41.4")
    assert prov.history == ()
    assert prov.status == ""


def test_spec_drift_when_the_spec_changed_or_is_newer_than_the_lock(prefix: Path, tmp_path: Path) -> None:
    # Given an env stamped with its spec and lock
    spec = lockfiles.write(tmp_path, "environment.yml", ENVIRONMENT_YML)
    lock = write_lock(records_of(prefix), CONDA_LOCK, tmp_path / "conda-lock.yml")
    stamp(prefix, spec=spec, lock=Path(lock.path))
    env = shared_env(prefix)
    assert spec_drift(read_provenance(env)) is None

    # When the spec is only touched after the lock was made
    later = Path(lock.path).stat().st_mtime + 60
    os.utime(spec, (later, later))
    touched = spec_drift(read_provenance(env))

    # Then it is newer than its lock
    assert touched is not None
    assert touched.kind == "spec-drift"
    assert "is newer than its lock file" in touched.message

    # When the spec is edited
    spec.write_text(ENVIRONMENT_YML.replace("==4.2.0", "==4.3.0"))
    edited = spec_drift(read_provenance(env))

    # Then it changed since stamping, and the message names both hashes
    assert edited is not None
    assert "changed since the environment was stamped" in edited.message


def test_a_lock_changed_since_stamping_and_a_missing_spec_are_problems(prefix: Path, tmp_path: Path) -> None:
    # Given a stamped env whose lock is then rewritten and whose spec is deleted
    spec = lockfiles.write(tmp_path, "environment.yml", ENVIRONMENT_YML)
    refs = records_of(prefix)
    lock = write_lock(refs, CONDA_LOCK, tmp_path / "conda-lock.yml")
    stamp(prefix, spec=spec, lock=Path(lock.path))
    write_lock(refs[1:], CONDA_LOCK, tmp_path / "conda-lock.yml")
    spec.unlink()

    # When the provenance is read
    prov = read_provenance(shared_env(prefix))

    # Then both are reported, and the env is still described
    assert sorted(p.kind for p in prov.problems) == ["lock-changed", "spec-missing"]
    assert prov.lock is not None
    assert len(prov.lock.packages) == len(refs) - 1
    assert spec_drift(prov) is None  # nothing to compare a missing spec with
