"""Benchmark: the install guard's cost on ordinary cells.

Starts two kernels of the same shared environment through the envshare provisioner, one with the
guard armed (guard_mode=advise) and one without (guard_mode=off), and executes the same trivial
cells in both, interleaved in batches so machine noise hits both alike. Prints the time per cell
and the ratio guarded/unguarded. Target (issue "The install guard"): overhead at most 2%.

Run: python tests/benchmarks/bench_guard.py [--cells 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from jupyter_envshare.kernelspecs import EnvShareKernelSpecManager
from jupyter_envshare.testing.layouts import abuild_isis_installation

KERNEL = "conda-env-isis4.3.0-py"
CELLS = ("x = 1", "y = x + 1", "z = [i for i in range(10)]", "s = 'text' * 3")


async def start(envs_root: Path, mode: str) -> tuple[AsyncKernelManager, Any]:
    config = Config({"EnvShare": {"env_roots": [str(envs_root)], "guard_mode": mode}})
    km = AsyncKernelManager(
        kernel_name=KERNEL, kernel_spec_manager=EnvShareKernelSpecManager(config=config), config=config
    )
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    await client.wait_for_ready(timeout=120)
    return km, client


async def run_batch(client: Any, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        reply = await client.execute_interactive(
            CELLS[index % len(CELLS)], timeout=60, output_hook=lambda m: None
        )
        if reply["content"]["status"] != "ok":
            raise RuntimeError(reply["content"])
    return time.perf_counter() - started


async def main_async(cells: int, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="envshare-bench-guard-") as tmp:
        base = Path(tmp)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
        inst = await abuild_isis_installation(base, versions=("4.3.0",), launchable=["isis4.3.0"])
        guarded_km, guarded = await start(inst.current_envs_dir, "advise")
        plain_km, plain = await start(inst.current_envs_dir, "off")
        try:
            armed: list[str] = []
            await guarded.execute_interactive(
                "print('envshare' in get_ipython().magics_manager.magics['line'])",
                output_hook=lambda m: armed.append(m["content"].get("text", "")),
            )
            if "True" not in "".join(armed):
                raise RuntimeError("the guard is not armed in the guarded kernel")
            await run_batch(guarded, 50)  # warm both kernels up
            await run_batch(plain, 50)
            totals = {"guarded": 0.0, "plain": 0.0}
            done = 0
            while done < cells:
                n = min(batch, cells - done)
                totals["guarded"] += await run_batch(guarded, n)
                totals["plain"] += await run_batch(plain, n)
                done += n
        finally:
            for client, km in ((guarded, guarded_km), (plain, plain_km)):
                client.stop_channels()
                await km.shutdown_kernel(now=True)
    per_cell = {k: v / cells * 1e3 for k, v in totals.items()}
    ratio = totals["guarded"] / totals["plain"]
    print(f"{cells} trivial cells per kernel, batches of {batch}, interleaved")
    print(f"{'kernel':<26}{'total':>10}{'per cell':>12}")
    print(f"{'guard armed (advise)':<26}{totals['guarded']:>9.2f}s{per_cell['guarded']:>10.3f}ms")
    print(f"{'guard off':<26}{totals['plain']:>9.2f}s{per_cell['plain']:>10.3f}ms")
    print(f"ratio guarded/off: {ratio:.3f}x (overhead {100 * (ratio - 1):+.1f}%, target <= +2%)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args()
    asyncio.run(main_async(args.cells, args.batch))


if __name__ == "__main__":
    main()
