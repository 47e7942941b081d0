"""Benchmark: drift status of a 1,000-package environment and of 300 environments (the list view).

Prints, in one run:
- drift status of an environment with 1,000 packages and ~50 MB of conda-meta (20 real packages
  installed by py-rattler, 980 records synthesized at ~50 KB each by padding ``files`` and
  ``paths_data`` with plausible entries, a third of them owning a ``*.dist-info`` in site-packages):
  cold (a new DriftEngine) and warm (same engine, nothing changed), against a naive full parse of
  every record with the stdlib json module; plus the cost after one record changed. Warm
  ``status()`` checks conda-meta's listing and mtime (stat of every record every
  ``record_stat_interval``); warm ``report()`` stats every record each time;
- warm status of 300 environments (copies of a small real environment), as the list view asks it.

"Cold" means a new engine in a process whose files are in the OS page cache (as on a server that
has run for a while); the naive parse is timed under the same conditions.
Targets (issue "Provenance and drift"): warm >= 50x faster than the naive parse; 300-environment
warm status < 50 ms. Run: python tests/benchmarks/bench_drift.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_envshare.drift import DriftEngine, installed_state
from jupyter_envshare.packages import PackageRef
from jupyter_envshare.testing.envfactory import (
    build_channel,
    install_env,
    module_package,
    python_kernel_package,
    python_runtime_packages,
    python_xy,
    stub_package,
)

RECORD_BYTES = 50_000


@dataclass(frozen=True)
class BenchLock:
    """A lock in the shape of provenance's ``LockInfo`` (path, format, sha256, packages)."""

    path: str
    format: str
    sha256: str
    packages: tuple[PackageRef, ...]


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def build_small_env(base: Path) -> Path:
    """A real environment of ~20 packages, some with files."""
    packages = [
        *python_runtime_packages(),
        python_kernel_package(depends=["ipykernel"]),
        *(module_package(f"bench_mod_{i}", "1.0") for i in range(8)),
        *(stub_package(f"bench-lib-{i}", f"2.{i}") for i in range(8)),
    ]
    channel = build_channel(base / "channel", packages)
    specs = [
        "envshare-kernel-python",
        *(f"bench_mod_{i}" for i in range(8)),
        *(f"bench-lib-{i}" for i in range(8)),
    ]
    return install_env(base / "envs" / "small", channel, specs, cache_dir=base / "pkgs")


def synthesize_record(
    template: dict[str, Any], index: int, site: str, with_dist_info: bool
) -> dict[str, Any]:
    """A realistic ~50 KB conda-meta record for package ``synth-pkg-INDEX``."""
    name = f"synth-pkg-{index:04d}"
    module = name.replace("-", "_")
    version, build = f"1.{index % 17}.{index % 5}", f"py311h{index:06x}_0"
    fn = f"{name}-{version}-{build}.conda"
    channel = "https://conda.example.org/conda-forge"
    seed = hashlib.sha256(name.encode()).hexdigest()
    record = dict(template)
    record.update(
        name=name,
        version=version,
        build=build,
        build_number=0,
        subdir="linux-64",
        fn=fn,
        url=f"{channel}/linux-64/{fn}",
        channel=f"{channel}/linux-64",
        md5=seed[:32],
        sha256=hashlib.sha256(seed.encode()).hexdigest(),
        depends=["python >=3.11,<3.12.0a0", "libgcc-ng >=12", "numpy >=1.23"],
        requested_specs=[],
        extracted_package_dir=f"/opt/conda/pkgs/{name}-{version}-{build}",
        link={"source": f"/opt/conda/pkgs/{name}-{version}-{build}", "type": 1},
    )
    files: list[str] = []
    if with_dist_info:
        dist = f"{site}/{module}-{version}.dist-info"
        files += [f"{dist}/{f}" for f in ("INSTALLER", "LICENSE", "METADATA", "RECORD", "REQUESTED", "WHEEL")]
    paths: list[dict[str, Any]] = []
    i = 0
    while True:
        if i % 5 == 4:
            path = f"lib/lib{module}_{i}.so.{index % 9}"
        else:
            path = f"{site}/{module}/subpackage_{i // 12:02d}/module_{i:03d}.py"
        files.append(path)
        i += 1
        if len(json.dumps(files)) * 5 > RECORD_BYTES:  # paths_data costs ~4x files
            break
    for j, path in enumerate(files):
        digest = hashlib.sha256(f"{seed}{path}".encode()).hexdigest()
        entry: dict[str, Any] = {"_path": path, "path_type": "hardlink", "sha256": digest}
        if j % 7 == 3:
            entry.update(
                file_mode="text",
                prefix_placeholder="/home/conda/feedstock_root/build_artifacts/placehold_placehold_pl",
                sha256_in_prefix=hashlib.sha256(digest.encode()).hexdigest(),
            )
        entry["size_in_bytes"] = 1000 + (j * 37) % 9000
        paths.append(entry)
    record["files"] = files
    record["paths_data"] = {"paths_version": 1, "paths": paths}
    return record


def build_big_env(base: Path, n_packages: int) -> Path:
    """The small env grown to ``n_packages`` records with synthesized ~50 KB ones."""
    prefix = base / "envs" / "big"
    shutil.copytree(base / "envs" / "small", prefix, symlinks=True)
    meta = prefix / "conda-meta"
    template = json.loads(next(meta.glob("bench_mod_0-*.json")).read_text())
    site = f"lib/python{python_xy()}/site-packages"
    existing = len(list(meta.glob("*.json")))
    for index in range(n_packages - existing):
        with_dist_info = index % 3 == 0
        record = synthesize_record(template, index, site, with_dist_info)
        (meta / f"{record['name']}-{record['version']}-{record['build']}.json").write_text(
            json.dumps(record, indent=2)
        )
        if with_dist_info:
            (prefix / record["files"][0]).parent.mkdir(parents=True, exist_ok=True)
    return prefix


def lock_for(prefix: Path, directory: Path) -> BenchLock:
    """An explicit lock of the environment as built (written to disk, like a real one)."""
    refs = installed_state(prefix, files=False).packages
    text = "@EXPLICIT\n" + "".join(f"{r.url}#{r.md5}\n" for r in refs if r.url)
    path = directory / f"{prefix.name}.lock.txt"
    path.write_text(text)
    return BenchLock(str(path), "explicit", hashlib.sha256(text.encode()).hexdigest(), tuple(refs))


def naive_status(prefix: Path, lock: BenchLock) -> str:
    """What a straightforward implementation does: parse every record fully, then compare."""
    installed = {}
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        with path.open("rb") as fh:
            doc = json.load(fh)
        installed[doc["name"]] = (doc["version"], doc["build"], doc.get("sha256", ""))
    locked = {p.name: (p.version, p.build, p.sha256) for p in lock.packages if p.kind == "conda"}
    return "in-sync" if installed == locked else "drifted"


def big_env(base: Path, n_packages: int, repeat: int, warm_repeat: int) -> tuple[float, float]:
    prefix = build_big_env(base, n_packages)
    records = list((prefix / "conda-meta").glob("*.json"))
    size = sum(p.stat().st_size for p in records)
    lock = lock_for(prefix, base)
    print(f"environment: {len(records)} records, {size / 1e6:.1f} MB of conda-meta")

    assert naive_status(prefix, lock) == "in-sync"
    assert DriftEngine().status(prefix, lock) == "in-sync"
    naive = median_seconds(lambda: naive_status(prefix, lock), repeat)
    cold = median_seconds(lambda: DriftEngine().status(prefix, lock), repeat)
    engine = DriftEngine()
    engine.status(prefix, lock)
    warm = median_seconds(lambda: engine.status(prefix, lock), warm_repeat)
    warm_report = median_seconds(lambda: engine.report(prefix, lock), warm_repeat)

    # One record rewritten (as an update of one package would): only that record is read again.
    victim = records[len(records) // 2]
    doc = json.loads(victim.read_text())
    doc["version"] = doc["version"] + ".post1"
    victim.unlink()
    victim.write_text(json.dumps(doc, indent=2))
    start = time.perf_counter()
    after = engine.status(prefix, lock)
    one_changed = time.perf_counter() - start
    assert after == "drifted", after

    def row(label: str, seconds: float) -> None:
        print(f"{label:<38}{seconds * 1e3:>10.2f}ms{naive / seconds:>10.1f}x")

    print()
    print(f"{'1,000-package env status':<38}{'median':>12}{'vs naive':>11}")
    row("naive full json parse", naive)
    row("DriftEngine cold (new engine)", cold)
    row("DriftEngine warm status()", warm)
    row("DriftEngine warm report() (stats all)", warm_report)
    row("after one record changed", one_changed)
    verdict = "PASS" if naive / max(warm, warm_report) >= 50 else "FAIL"
    print(
        f"warm speed-up {naive / warm:.0f}x status, {naive / warm_report:.0f}x report (target >= 50x): ",
        end="",
    )
    print(verdict)
    return naive, warm


def many_envs(base: Path, n_envs: int, repeat: int) -> float:
    small = base / "envs" / "small"
    root = base / "list-view"
    root.mkdir()
    prefixes = [root / f"env{i:03d}" for i in range(n_envs)]
    for prefix in prefixes:
        shutil.copytree(small, prefix, symlinks=True)
    lock = lock_for(small, base)
    n_records = len(list((small / "conda-meta").glob("*.json")))

    def all_statuses(engine: DriftEngine) -> list[str]:
        return [engine.status(p, lock) for p in prefixes]

    cold = median_seconds(lambda: all_statuses(DriftEngine()), max(3, repeat // 3))
    engine = DriftEngine()
    assert set(all_statuses(engine)) == {"in-sync"}
    warm = median_seconds(lambda: all_statuses(engine), repeat)
    warm_reports = median_seconds(lambda: [engine.report(p, lock) for p in prefixes], repeat)
    print()
    print(f"{n_envs} environments ({n_records} records each), status of every one:")
    per_env = warm / n_envs * 1e6
    print(f"  cold (new engine) {cold * 1e3:.1f} ms, warm {warm * 1e3:.1f} ms ({per_env:.0f} us/env)")
    print(f"  warm report() of every one (full reports, for the API): {warm_reports * 1e3:.1f} ms")
    print(f"  300-env warm status (target < 50 ms): {'PASS' if warm < 0.050 else 'FAIL'}")
    return warm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--envs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="cold and naive runs")
    parser.add_argument("--warm-repeat", type=int, default=50, help="warm runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envshare-bench-drift-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        build_small_env(base)
        print(f"built the real environment with py-rattler in {time.perf_counter() - started:.1f} s")
        big_env(base, args.packages, args.repeat, args.warm_repeat)
        many_envs(base, args.envs, max(10, args.warm_repeat // 2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
