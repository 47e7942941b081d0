"""Discovery on real py-rattler-built installations: names, allow/deny, freshness, broken envs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_envshare.discovery import DiscoveryConfig, EnvDiscovery, EnvUnavailable
from jupyter_envshare.naming import clean_kernel_name, kernel_name, resolve_collisions
from jupyter_envshare.service import EnvNotFound, EnvService
from jupyter_envshare.testing.layouts import (
    ISIS_VERSIONS,
    SharedInstallation,
    build_second_generation,
    swap_current,
)

from .conftest import is_root


def engine(inst: SharedInstallation, **extra: object) -> EnvDiscovery:
    return EnvDiscovery(DiscoveryConfig(env_roots=(str(inst.current_envs_dir),), **extra))  # type: ignore[arg-type]


def test_lists_every_environment_with_nb_conda_kernels_names(site: SharedInstallation) -> None:
    # Given the shared installation behind its `current` link
    # When it is discovered
    snap = engine(site).snapshot()
    # Then every isis env offers its python kernel under nb_conda_kernels' name
    for version in ISIS_VERSIONS:
        entry = snap.kernels[f"conda-env-isis{version}-py"]
        assert entry.display_name == "Python 3 [shared: isis" + version + "]"
        assert entry.language == "python"
    # and the R-style kernel is `-r`, the env without kernels is a record without kernels
    assert snap.kernels["conda-env-rstats-r"].language == "R"
    nokernel = snap.env("nokernel")
    assert nokernel is not None
    assert nokernel.kernels == ()
    assert nokernel.usable
    # and prefixes are the resolved paths the installer wrote into the files
    isis = snap.env("isis4.3.0")
    assert isis is not None
    assert isis.prefix == os.path.realpath(site.prefix("isis4.3.0"))
    assert isis.has_history


def test_broken_environments_are_records_with_reasons(site: SharedInstallation) -> None:
    # Given an installation with a corrupt kernel.json, 0600 records and a dangling symlink
    snap = engine(site).snapshot()
    # Then the kernel list still holds every good kernel
    assert len([k for k in snap.kernels if k.startswith("conda-env-isis")]) == len(ISIS_VERSIONS)
    # and each broken env is a record with a reason a person can act on
    broken_json = snap.env("broken-json")
    assert broken_json is not None
    assert broken_json.kernels == ()
    assert any(p.kind == "bad-kernelspec" and "not valid JSON" in p.message for p in broken_json.problems)
    private = snap.env("private-records")
    assert private is not None
    assert any(p.kind == "private-records" and "chmod a+r" in p.message for p in private.problems)
    assert private.usable, "0600 records are a health warning, the kernel still works"
    assert "conda-env-private-records-py" in snap.kernels
    gone = snap.env("gone")
    assert gone is not None
    assert not gone.usable
    assert any(p.kind == "dangling-symlink" for p in gone.problems)


def test_broken_environment_is_logged_once(
    site: SharedInstallation, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an engine
    eng = engine(site)
    # When it lists three times
    with caplog.at_level("WARNING", logger="jupyter_envshare"):
        for _ in range(3):
            eng.snapshot(force=True)
    # Then each problem was logged exactly once
    dangling = [r for r in caplog.records if "does not exist" in r.getMessage() and "gone" in r.getMessage()]
    assert len(dangling) == 1


def test_unreadable_environment_is_a_record(mutable_site: SharedInstallation, jupyter_home: Path) -> None:
    # Given an environment nobody may read (as root, the listing runs without the capabilities
    # that bypass file permissions, as an ordinary user's server would)
    prefix = mutable_site.prefix("isis4.2.0")
    command = [sys.executable, "-m", "jupyter_envshare.cli", "kernels", "list", "--json"]
    command += ["--env-root", str(mutable_site.current_envs_dir)]
    if is_root():
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *command]
    prefix.chmod(0)
    try:
        # When it is listed
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        prefix.chmod(0o755)
    # Then it is listed as broken with the reason, the command says so, and the others are fine
    report = json.loads(done.stdout)
    assert done.returncode == 1
    record = next(e for e in report["envs"] if e["name"] == "isis4.2.0")
    assert record["usable"] is False
    assert record["problems"][0]["kind"] == "unreadable"
    assert "Permission denied" in record["problems"][0]["message"]
    assert "conda-env-isis4.3.0-py" in report["kernels"]


def test_allowed_and_denied_globs(site: SharedInstallation) -> None:
    # Given admins allow only isis4.* and deny 4.0.*
    snap = engine(site, allowed_envs=("isis4.*",), denied_envs=("isis4.0.*",)).snapshot()
    # Then only the allowed, not denied envs offer kernels
    names = {k.env for k in snap.kernels.values()}
    assert names == {"isis4.1.0", "isis4.1.1", "isis4.2.0", "isis4.2.1", "isis4.3.0"}
    # and a denied env is still visible to admins as a record saying why
    denied = snap.env("isis4.0.1")
    assert denied is not None
    assert not denied.allowed
    assert "isis4.0.*" in denied.problems[0].message
    with pytest.raises(EnvUnavailable, match="not allowed"):
        engine(site, denied_envs=("isis4.0.*",)).resolve("isis4.0.1", "python3")


def test_current_swap_shows_at_next_listing(mutable_site: SharedInstallation) -> None:
    # Given an engine that has listed generation v1 through `current`
    eng = engine(mutable_site)
    before = eng.snapshot()
    assert "conda-env-isis4.4.0-py" not in before.kernels
    second = build_second_generation(mutable_site, "v2", ("4.3.0", "4.4.0"))
    # When admins swap `current` to v2
    swap_current(mutable_site, "v2")
    after = eng.snapshot()
    # Then the next listing shows v2, with the same stable name for the env both have
    assert "conda-env-isis4.4.0-py" in after.kernels
    assert "conda-env-isis4.2.0-py" not in after.kernels
    isis = after.env("isis4.3.0")
    assert isis is not None
    assert isis.prefix == os.path.realpath(second.prefix("isis4.3.0"))
    assert after.kernels["conda-env-isis4.3.0-py"].resource_dir.startswith(os.path.realpath(second.envs_dir))


def test_new_removed_and_edited_environments_show_at_next_listing(mutable_site: SharedInstallation) -> None:
    eng = engine(mutable_site)
    eng.snapshot()
    envs = mutable_site.envs_dir
    # When an env is copied in, another removed and a kernel.json edited in place
    shutil.copytree(envs / "isis4.3.0", envs / "isis-copy", symlinks=True)
    shutil.rmtree(envs / "isis4.2.0")
    spec_file = envs / "isis4.3.0" / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["display_name"] = "Python 3 (edited)"
    spec_file.unlink()  # may be a hardlink into the package cache
    spec_file.write_text(json.dumps(spec))
    snap = eng.snapshot()
    # Then all three show without a restart
    assert "conda-env-isis-copy-py" in snap.kernels
    assert "conda-env-isis4.2.0-py" not in snap.kernels
    assert snap.env("isis4.2.0") is None
    assert snap.kernels["conda-env-isis4.3.0-py"].display_name == "Python 3 (edited) [shared: isis4.3.0]"


def test_unchanged_installation_is_served_from_cache_without_subprocesses(
    site: SharedInstallation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an engine that has listed once
    eng = engine(site)
    first = eng.snapshot()

    # When it lists again with process creation made impossible
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery spawned a process")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    again = eng.snapshot()
    # Then it is the same snapshot (nothing re-read)
    assert again is first


def test_revalidate_interval_serves_cache_then_sees_change(mutable_site: SharedInstallation) -> None:
    # Given an engine for a slow filesystem that revalidates at most every 60 s
    eng = engine(mutable_site, revalidate_interval=60.0)
    first = eng.snapshot()
    shutil.rmtree(mutable_site.envs_dir / "isis4.2.0")
    # Then within the interval the cached view is served, and a forced check sees the change
    assert eng.snapshot() is first
    assert "conda-env-isis4.2.0-py" not in eng.snapshot(force=True).kernels


def test_a_view_a_second_old_still_finds_a_just_published_env(mutable_site: SharedInstallation) -> None:
    # Given a service that has just looked at the disk (as filing a request does, at most once a second)
    service = EnvService(engine(mutable_site))
    assert service.env("isis4.2.0", max_age=60.0).name == "isis4.2.0"
    # When an environment is removed and another published right after
    shutil.rmtree(mutable_site.envs_dir / "isis4.2.0")
    shutil.copytree(mutable_site.prefix("isis4.3.0"), mutable_site.envs_dir / "isis4.4.0", symlinks=True)
    # Then a caller content with the recent view is still told about the removed one
    assert service.env("isis4.2.0", max_age=60.0).name == "isis4.2.0"
    # while the new one is found at once (a name missing from the view sends it to the disk)
    assert service.env("isis4.4.0", max_age=60.0).name == "isis4.4.0"
    # and a caller that needs the disk as it is now is not told about the removed one
    with pytest.raises(EnvNotFound):
        service.env("isis4.2.0")


def test_collisions_are_resolved_by_content_not_listing_order(
    tmp_path: Path, site: SharedInstallation
) -> None:
    # Given two roots that both hold an env called `isis4.3.0`, and envs whose names clean alike
    other = tmp_path / "other" / "envs"
    other.mkdir(parents=True)
    shutil.copytree(site.prefix("isis4.2.0"), other / "isis4.3.0", symlinks=True)
    shutil.copytree(site.prefix("isis4.2.0"), other / "a b", symlinks=True)
    shutil.copytree(site.prefix("isis4.2.0"), other / "a_b", symlinks=True)
    roots = (str(site.current_envs_dir), str(other))
    # When discovered with the roots in either order
    forward = EnvDiscovery(DiscoveryConfig(env_roots=roots)).snapshot()
    backward = EnvDiscovery(DiscoveryConfig(env_roots=roots[::-1])).snapshot()
    # Then the first configured root keeps the plain name and the other is qualified by its parent
    assert forward.kernels["conda-env-isis4.3.0-py"].resource_dir.startswith(str(site.envs_dir.resolve()))
    assert "conda-env-other-isis4.3.0-py" in forward.kernels
    assert backward.kernels["conda-env-isis4.3.0-py"].resource_dir.startswith(str(other.resolve()))
    # and names that clean to the same string are told apart the same way every time
    assert forward.kernels["conda-env-a_b-py"].env == "a b"
    assert forward.kernels["conda-env-a_b-py-2"].env == "a_b"
    assert backward.kernels["conda-env-a_b-py"].env == "a b"


def test_explicit_prefixes_and_catalog(tmp_path: Path, site: SharedInstallation) -> None:
    # Given an explicit prefix, one that is already under a root, and a catalog restricting rstats
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(
        "environments:\n"
        f"  - name: isis-lts\n    prefix: {site.prefix('isis3.6.0')}\n    owner: planetary-team\n"
        "  - name: rstats\n    allowed_groups: [a-group-nobody-has]\n"
        "  - 42\n"
    )
    cfg = DiscoveryConfig(
        env_roots=(str(site.current_envs_dir),),
        env_prefixes=(str(site.prefix("isis4.3.0")),),
        catalog=str(catalog),
    )
    snap = EnvDiscovery(cfg).snapshot()
    # Then the env already found under the root is listed once
    assert [e.name for e in snap.envs].count("isis4.3.0") == 1
    assert not any(e.name.endswith("-isis4.3.0") for e in snap.envs)
    # and the catalog's group restriction hides rstats with a reason, and bad entries are reported
    rstats = snap.env("rstats")
    assert rstats is not None
    assert not rstats.allowed
    assert "a-group-nobody-has" in rstats.problems[-1].message
    assert any("entry 3" in p.message for p in snap.problems)


def test_missing_root_is_reported_not_fatal(tmp_path: Path, site: SharedInstallation) -> None:
    cfg = DiscoveryConfig(env_roots=(str(tmp_path / "nope"), str(site.current_envs_dir)))
    snap = EnvDiscovery(cfg).snapshot()
    assert "conda-env-isis4.3.0-py" in snap.kernels
    assert any(p.kind == "missing-root" for p in snap.problems)


@pytest.mark.parametrize(
    ("env", "kernel", "expected"),
    [
        ("isis4.3.0", "python3", "conda-env-isis4.3.0-py"),
        ("stats", "ir", "conda-env-stats-r"),
        ("stats", "IR", "conda-env-stats-r"),
        ("my env", "julia-1.10", "conda-env-my_env-julia-1.10"),
        ("géo", "python3", "conda-env-geo-py"),
        ("x/y", "python2", "conda-env-x_y-py"),
    ],
)
def test_kernel_names_follow_nb_conda_kernels(env: str, kernel: str, expected: str) -> None:
    assert kernel_name("conda-env-{env}-{kernel}", env, kernel, "python") == expected


def test_name_format_is_configurable() -> None:
    assert kernel_name("shared-{env}-{raw_kernel}", "isis", "python3", "python") == "shared-isis-python3"
    assert clean_kernel_name("a b:c") == "a_b_c"


def test_resolve_collisions_ignores_input_order() -> None:
    first = resolve_collisions([("k", ("b",)), ("k", ("a",)), ("k-2", ("c",))])
    second = resolve_collisions([("k-2", ("c",)), ("k", ("a",)), ("k", ("b",))])
    assert first == second == {("a",): "k", ("b",): "k-3", ("c",): "k-2"}


def test_chmod_and_sidecar_edits_show_at_next_listing(mutable_site: SharedInstallation) -> None:
    # Given an env whose records were left private, listed once
    eng = engine(mutable_site, metadata_interval=0.0)
    prefix = mutable_site.prefix("isis4.2.0")
    records = sorted((prefix / "conda-meta").glob("*.json"))
    for record in records:
        record.chmod(0o600)
    assert any(p.kind == "private-records" for p in eng.snapshot().env("isis4.2.0").problems)  # type: ignore[union-attr]
    # When an admin publishes them (chmod only: no mtime changes) and stamps a sidecar in place
    for record in records:
        record.chmod(0o644)
    sidecar = prefix / "conda-meta" / "envshare"
    sidecar.write_text('{"lock_sha256": "abc"}')
    snap = eng.snapshot()
    # Then both show at the next listing
    record = snap.env("isis4.2.0")
    assert record is not None
    assert not any(p.kind == "private-records" for p in record.problems)
    assert record.sidecar == {"lock_sha256": "abc"}
    sidecar.write_text('{"lock_sha256": "def"}')
    assert eng.snapshot().env("isis4.2.0").sidecar == {"lock_sha256": "def"}  # type: ignore[union-attr]


def test_dangling_alias_heals_when_its_target_appears(mutable_site: SharedInstallation) -> None:
    envs = mutable_site.envs_dir
    (envs / "latest").symlink_to("isis4.4.0")
    eng = engine(mutable_site)
    assert not eng.snapshot().env("latest").usable  # type: ignore[union-attr]
    shutil.copytree(envs / "isis4.3.0", envs / "isis4.4.0", symlinks=True)
    latest = eng.snapshot().env("latest")
    assert latest is not None
    assert latest.usable
    assert latest.alias_of == os.path.realpath(envs / "isis4.4.0")


def test_catalog_entry_for_an_env_under_a_root_still_applies(
    tmp_path: Path, mutable_site: SharedInstallation
) -> None:
    # Given a catalog naming and restricting an env that also sits under a root
    catalog = tmp_path / "catalog.yml"
    prefix = mutable_site.prefix("isis4.2.0")
    catalog.write_text(f"- name: isis-secret\n  prefix: {prefix}\n  allowed_groups: [nobody-has-this]\n")
    snap = engine(mutable_site, catalog=str(catalog)).snapshot()
    # Then the env is listed once, under the catalog's name, and the restriction holds
    assert snap.env("isis4.2.0") is None
    secret = snap.env("isis-secret")
    assert secret is not None
    assert not secret.allowed
    assert not any(k.env == "isis-secret" for k in snap.kernels.values())


def test_explicit_prefix_that_is_a_symlink_to_a_root_env_is_listed_once(
    tmp_path: Path, mutable_site: SharedInstallation
) -> None:
    link = tmp_path / "isis-link"
    link.symlink_to(mutable_site.prefix("isis4.3.0"))
    cfg = DiscoveryConfig(env_roots=(str(mutable_site.current_envs_dir),), env_prefixes=(str(link),))
    snap = EnvDiscovery(cfg).snapshot()
    assert [e.name for e in snap.envs].count("isis4.3.0") == 1
    assert snap.env("isis-link") is None


def test_unusable_name_format_falls_back_with_a_problem(mutable_site: SharedInstallation) -> None:
    snap = engine(mutable_site, name_format="{env}-{user}").snapshot()
    assert "conda-env-isis4.3.0-py" in snap.kernels
    assert any(p.kind == "bad-config" and "{user}" in p.message for p in snap.problems)
