"""``jupyter envshare``: the admin command line, reading the same config files as the server."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..store import StoreError
from .common import EXIT_ERROR, CommandError
from .envs import register as register_env_commands
from .kernels import register as register_kernel_commands
from .requests import register as register_request_commands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jupyter envshare``."""
    parser = argparse.ArgumentParser(
        prog="jupyter envshare",
        description="Shared conda environments as Jupyter kernels: admin commands. "
        "Exit codes: 0 in sync / no problems, 1 drifted / problems found, 2 error.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    register_env_commands(sub)
    register_kernel_commands(sub)
    register_request_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter envshare`` / ``jupyter-envshare``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Problems are part of each command's output; the library's log lines would only repeat them.
    logging.getLogger("jupyter_envshare").setLevel(logging.CRITICAL)
    try:
        code: int = args.func(args)
    except (CommandError, StoreError, OSError, ValueError) as err:  # StoreError: unknown id, bad move
        print(f"jupyter envshare: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
