"""Helpers for tests that execute notebooks in real shared-environment kernels."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from jupyter_envshare.kernelspecs import EnvShareKernelSpecManager

# No conda binary exists on these machines: this script stands in for it (and for mamba and
# micromamba) so pass-through commands have something real to reach. It is a TEST DOUBLE, and
# acts like conda on what it touches: `list` reads conda-meta records, `install`/`remove` write a
# record into the target prefix, so a command the guard failed to stop would change the env.
CONDA_TEST_DOUBLE = '''#!{python}
"""TEST DOUBLE for the conda binary (used by jupyter_envshare's tests only)."""
import glob, json, os, sys
args = sys.argv[1:]
words = [a for a in args if not a.startswith("-")]
command = words[0] if words else ""
def option(*names):
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
    return None
target = option("-p", "--prefix") or os.environ.get("CONDA_PREFIX", "")
if command == "list":
    print("# packages in environment at " + target + ":")
    for path in sorted(glob.glob(os.path.join(target, "conda-meta", "*.json"))):
        rec = json.load(open(path))
        print(rec["name"], rec["version"], rec["build"])
elif command in ("install", "update", "upgrade", "remove", "uninstall", "create"):
    meta = os.path.join(os.path.expanduser(target), "conda-meta")
    os.makedirs(meta, exist_ok=True)
    with open(os.path.join(meta, "double-" + command + ".json"), "w") as fh:
        json.dump({{"name": "double", "version": "0", "build": command, "args": words[1:]}}, fh)
    print("conda test double: " + command + " " + " ".join(words[1:]) + " into " + target)
else:
    print("conda test double: " + " ".join(args))
'''


def install_conda_test_double(directory: Path) -> Path:
    """Write the conda test double as conda, mamba and micromamba in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("conda", "mamba", "micromamba"):
        path = directory / name
        path.write_text(CONDA_TEST_DOUBLE.format(python=sys.executable))
        path.chmod(0o755)
    return directory


def env_digest(prefix: Path) -> str:
    """A digest of an environment's conda-meta and site-packages: names, sizes and contents."""
    sha = hashlib.sha256()
    roots = [prefix / "conda-meta", *sorted(prefix.glob("lib/python3.*/site-packages"))]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                sha.update(str(path.relative_to(prefix)).encode())
                sha.update(path.read_bytes())
    return sha.hexdigest()


def execute(kernel_name: str, cells: list[str], *, timeout: int = 120) -> Any:
    """Run cells in a fresh kernel started through the envshare kernelspec manager; return the nb."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    km = KernelManager(kernel_name=kernel_name, kernel_spec_manager=EnvShareKernelSpecManager())
    NotebookClient(nb, km=km, timeout=timeout, startup_timeout=120, allow_errors=True).execute()
    return nb


def stdout_of(cell: Any) -> str:
    """Everything a cell printed to stdout."""
    return "".join(
        o.get("text", "")
        for o in cell.outputs
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def display_bundles(cell: Any) -> list[dict[str, Any]]:
    """The data of each display_data output of a cell."""
    return [dict(o["data"]) for o in cell.outputs if o.get("output_type") == "display_data"]
