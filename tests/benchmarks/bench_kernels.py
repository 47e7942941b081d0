"""Benchmark: kernel listing and kernel start, envshare against jupyter_client's stock parts.

Prints, in one run, side by side:
- listing N shared environments through EnvShareKernelSpecManager versus the stock
  KernelSpecManager listing N plain kernelspec directories, cold (new manager) and warm (same
  manager, nothing changed), with the ratio envshare/stock; the warm listing revalidates
  against the disk on every call (revalidate_interval=0), and the script proves it by editing a
  kernel.json and listing once more;
- the number of processes spawned while listing (must be 0);
- kernel start-to-ready through EnvShareProvisioner versus LocalProvisioner for the same kernel.

Targets (issue "Shared environments as kernels"): warm <= 0.1x stock, cold <= 1.5x stock,
0 subprocesses, provisioner start <= 1.10x. Run: python tests/benchmarks/bench_kernels.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from jupyter_envshare import discovery
from jupyter_envshare.kernelspecs import EnvShareKernelSpecManager
from jupyter_envshare.testing.layouts import build_isis_installation


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class SpawnCounter:
    """Counts process creation (Popen, fork, posix_spawn) while active."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> SpawnCounter:
        def wrap(owner: Any, name: str) -> None:
            original = getattr(owner, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                return original(*args, **kwargs)

            self._saved.append((owner, name, original))
            setattr(owner, name, counted)

        wrap(subprocess.Popen, "__init__")
        wrap(os, "fork")
        wrap(os, "posix_spawn")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)


def build_sites(base: Path, n_envs: int) -> tuple[Path, Path, str]:
    """N shared envs (py-rattler) and N plain kernelspec dirs with the same kernel.json files."""
    versions = [f"1.{i}.0" for i in range(n_envs - 3)]  # + rstats, nokernel, activated
    started = time.perf_counter()
    inst = build_isis_installation(base / "site", versions=versions, launchable=[f"isis{versions[-1]}"])
    elapsed = time.perf_counter() - started
    print(f"built {len(inst.env_prefixes)} environments with py-rattler in {elapsed:.1f} s")
    plain = base / "plain-kernels"
    plain.mkdir()
    for name, prefix in inst.env_prefixes.items():
        for spec in (prefix / "share" / "jupyter" / "kernels").glob("*/kernel.json"):
            target = plain / f"{name}-{spec.parent.name}"
            target.mkdir()
            shutil.copy(spec, target / "kernel.json")
    return inst.current_envs_dir, plain, f"isis{versions[-1]}"


def listing(envs_root: Path, plain: Path, empty: Path, repeat: int, warm_repeat: int) -> None:
    config = Config({"EnvShare": {"env_roots": [str(envs_root)]}})

    def ours() -> EnvShareKernelSpecManager:
        discovery._ENGINES.clear()  # a cold manager must not find a warm process-wide engine
        ksm = EnvShareKernelSpecManager(config=config)
        ksm.kernel_dirs = [str(empty)]
        return ksm

    def stock() -> KernelSpecManager:
        ksm = KernelSpecManager()
        ksm.kernel_dirs = [str(plain)]
        return ksm

    n_ours = len(ours().get_all_specs())
    n_stock = len(stock().get_all_specs())
    print(f"kernelspecs listed: envshare {n_ours}, stock {n_stock}")

    cold_ours = median_seconds(lambda: ours().get_all_specs(), repeat)
    cold_stock = median_seconds(lambda: stock().get_all_specs(), repeat)
    warm_manager, stock_manager = ours(), stock()
    warm_manager.get_all_specs()
    stock_manager.get_all_specs()
    warm_ours = median_seconds(warm_manager.get_all_specs, warm_repeat)
    warm_stock = median_seconds(stock_manager.get_all_specs, warm_repeat)

    # Freshness: an edit on disk shows at the very next listing of the warm manager.
    spec_file = next(envs_root.resolve().glob("*/share/jupyter/kernels/python3/kernel.json"))
    spec = json.loads(spec_file.read_text())
    spec["display_name"] = "Edited during the benchmark"
    spec_file.unlink()
    spec_file.write_text(json.dumps(spec))
    fresh = any(
        s["spec"]["display_name"].startswith("Edited during the benchmark")
        for s in warm_manager.get_all_specs().values()
    )

    with SpawnCounter() as spawned:
        ours().get_all_specs()
        for _ in range(50):
            warm_manager.get_all_specs()

    print()
    print(f"{'listing':<10}{'envshare':>14}{'stock':>14}{'ratio':>9}{'target':>9}")
    for label, ours_s, stock_s, target in (
        ("cold", cold_ours, cold_stock, "<=1.5x"),
        ("warm", warm_ours, warm_stock, "<=0.1x"),
    ):
        ratio = ours_s / stock_s
        print(f"{label:<10}{ours_s * 1e3:>11.3f} ms{stock_s * 1e3:>11.3f} ms{ratio:>8.3f}x{target:>9}")
    print(f"warm listing revalidates on every call; edit seen at next listing: {'yes' if fresh else 'NO'}")
    print(f"processes spawned by 1 cold + 50 warm listings: {spawned.count}")


async def start_to_ready(km: AsyncKernelManager) -> float:
    start = time.perf_counter()
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        elapsed = time.perf_counter() - start
    finally:
        client.stop_channels()
        await km.shutdown_kernel(now=True)
    return elapsed


async def kernel_starts(envs_root: Path, env: str, base: Path, runs: int) -> None:
    config = Config({"EnvShare": {"env_roots": [str(envs_root)]}})
    ours = EnvShareKernelSpecManager(config=config)
    name = f"conda-env-{env}-py"
    # The baseline: the very same kernel.json as a plain kernelspec, started by LocalProvisioner.
    plain = base / "baseline-kernels" / "same-kernel"
    plain.mkdir(parents=True)
    shutil.copy(Path(ours.get_kernel_spec(name).resource_dir) / "kernel.json", plain / "kernel.json")
    stock = KernelSpecManager()
    stock.kernel_dirs = [str(plain.parent)]
    times: dict[str, list[float]] = {"envshare": [], "local": []}
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        times["envshare"].append(
            await start_to_ready(AsyncKernelManager(kernel_name=name, kernel_spec_manager=ours))
        )
        times["local"].append(
            await start_to_ready(AsyncKernelManager(kernel_name="same-kernel", kernel_spec_manager=stock))
        )
    ours_median = statistics.median(times["envshare"])
    local_median = statistics.median(times["local"])
    print()
    print(f"{'kernel start-to-ready':<24}{'median':>10}{'min':>10}")
    print(f"{'EnvShareProvisioner':<24}{ours_median:>9.3f}s{min(times['envshare']):>9.3f}s")
    print(f"{'LocalProvisioner':<24}{local_median:>9.3f}s{min(times['local']):>9.3f}s")
    print(f"ratio envshare/local: {ours_median / local_median:.3f}x (target <= 1.10x), {runs} runs each")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=15, help="cold listings per side")
    parser.add_argument("--warm-repeat", type=int, default=300, help="warm listings per side")
    parser.add_argument("--kernel-runs", type=int, default=10, help="kernel starts per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="envshare-bench-") as tmp:
        base = Path(tmp)
        # Keep the benchmark's own Jupyter dirs and spool out of the user's.
        for var, sub in (
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
        ):
            (base / sub).mkdir()
            os.environ[var] = str(base / sub)
        envs_root, plain, launchable = build_sites(base, args.envs)
        empty = base / "no-native-kernels"
        empty.mkdir()
        listing(envs_root, plain, empty, args.repeat, args.warm_repeat)
        asyncio.run(kernel_starts(envs_root, launchable, base, args.kernel_runs))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
