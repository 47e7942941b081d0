"""What every ``jupyter envshare`` command shares: settings, exit codes, output."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from traitlets.config import Config
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from ..config import EnvShare, load_config_files
from ..discovery import DiscoveryConfig, Snapshot, discovery_for
from ..service import EnvService

EXIT_OK = 0
EXIT_PROBLEMS = 1  # drifted, or problems found
EXIT_ERROR = 2


class CommandError(Exception):
    """A command cannot do what was asked; the message says why, the exit code is 2."""


def settings_from_args(args: argparse.Namespace) -> EnvShare:
    """EnvShare settings from the Jupyter config files, plus ``--config FILE`` when given."""
    config = load_config_files()
    if args.config:
        path = Path(args.config).resolve()
        loader = PyFileConfigLoader if path.suffix == ".py" else JSONFileConfigLoader
        extra: Config = loader(path.name, path=str(path.parent)).load_config()
        config.merge(extra)
    for root in args.env_root or []:
        config.EnvShare.env_roots = [*config.EnvShare.get("env_roots", []), root]
    return EnvShare(config=config)


def discovery_config_from_args(args: argparse.Namespace) -> DiscoveryConfig:
    """Discovery settings for this command: the disk as it is now, whatever intervals the server uses.

    A command answers once, so it must not be served a view cached by an earlier call in the same
    process (``main`` called twice: a stamp, then a drift, within ``metadata_interval``).
    """
    config = settings_from_args(args).discovery_config()
    return replace(config, revalidate_interval=0.0, metadata_interval=0.0)


def snapshot_from_args(args: argparse.Namespace) -> Snapshot:
    """A fresh discovery snapshot for the settings of this command."""
    return discovery_for(discovery_config_from_args(args)).snapshot(force=True)


def service_from_args(args: argparse.Namespace) -> EnvService:
    """The environments service for the settings of this command."""
    return EnvService(discovery_for(discovery_config_from_args(args)))


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``."""
    print(json.dumps(data, indent=2, sort_keys=False))


def console() -> Console:
    """Human output: tables on a terminal, plain text when piped."""
    return Console(highlight=False, soft_wrap=False, stderr=False)


def error_console() -> Console:
    """Progress bars and warnings go to stderr, so stdout stays clean for pipes."""
    return Console(stderr=True, highlight=False)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every command takes."""
    parser.add_argument("--config", help="an extra config file (.py or .json) with c.EnvShare.*")
    parser.add_argument("--env-root", action="append", help="an extra environment root (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def warn(message: str) -> None:
    """A warning on stderr."""
    print(f"jupyter envshare: warning: {message}", file=sys.stderr)
