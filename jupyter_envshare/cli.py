"""``jupyter envshare``: the admin command line, reading the same config files as the server."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from ._version import __version__
from .config import EnvShare, load_config_files
from .discovery import SharedEnv, Snapshot, discovery_for
from .kernelspecs import env_status, sync_kernelspecs
from .seal import seal, seal_message, unseal

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_ERROR = 2


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


def env_json(env: SharedEnv) -> dict[str, Any]:
    """An environment record as the CLI prints it with ``--json``."""
    return {
        "name": env.name,
        "path": env.path,
        "prefix": env.prefix,
        "source": env.source,
        "status": env_status(env),
        "allowed": env.allowed,
        "usable": env.usable,
        "read_only": env.read_only,
        "alias_of": env.alias_of,
        "kernels": [
            {
                "name": k.name,
                "raw_name": k.raw_name,
                "display_name": k.display_name,
                "language": k.language,
            }
            for k in env.kernels
        ],
        "problems": [{"kind": p.kind, "severity": p.severity, "message": p.message} for p in env.problems],
    }


def cmd_kernels_list(args: argparse.Namespace) -> int:
    """List shared kernels, and every environment that offers none with the reason."""
    snap = _snapshot(args)
    if args.json:
        print(
            json.dumps(
                {
                    "kernels": sorted(snap.kernels),
                    "envs": [env_json(e) for e in snap.envs],
                    "problems": [{"kind": p.kind, "message": p.message} for p in snap.problems],
                },
                indent=2,
            )
        )
    else:
        _print_kernels(snap)
    troubled = any(not e.usable and e.allowed for e in snap.envs) or bool(snap.problems)
    return EXIT_PROBLEMS if troubled else EXIT_OK


def cmd_kernels_sync(args: argparse.Namespace) -> int:
    """Write the shared kernels as kernelspec files for tools that run without the server."""
    snap = _snapshot(args)
    if args.config or args.env_root:
        # The provisioner finds environments through the config files: kernels of roots given
        # only on this command line would start the explaining fallback kernel instead.
        print(
            "jupyter envshare: warning: --config/--env-root apply to this command only; kernels "
            "written now launch only where the Jupyter config files name the same environments.",
            file=sys.stderr,
        )
    written, removed = sync_kernelspecs(snap, Path(args.dir))
    if args.json:
        print(
            json.dumps(
                {"dir": str(Path(args.dir).resolve()), "written": written, "removed": removed},
                indent=2,
            )
        )
    else:
        print(f"{len(written)} kernelspecs written to {args.dir}, {len(removed)} stale removed")
        for name in removed:
            print(f"  removed {name}")
    return EXIT_OK


def cmd_seal(args: argparse.Namespace) -> int:
    """Write (or with --undo remove) the conda and pip markers that refuse changes to an env."""
    settings = settings_from_args(args)
    name, prefix = _resolve_env(settings, args.env)
    if args.undo:
        report = unseal(prefix)
    else:
        contact = settings.contact
        record = discovery_for(settings.discovery_config()).snapshot().env(name)
        if record is not None and record.catalog:
            contact = str(record.catalog.get("contact") or record.catalog.get("owner") or contact)
        report = seal(prefix, args.message or seal_message(name, contact))
    if args.json:
        print(json.dumps({"env": name, **report.as_json()}, indent=2))
    else:
        state = "sealed" if report.sealed else ("partly sealed" if report.frozen else "not sealed")
        print(f"{name} ({report.prefix}, owner {report.owner}): {state}")
        print(f"  conda-meta/frozen: {'yes' if report.frozen else 'no'}")
        for marker in report.externally_managed:
            print(f"  {marker}")
        if not args.undo and not report.externally_managed:
            print("  no Python interpreter found: pip is not covered")
        for finding in report.writable_by_others:
            print(f"  warning: {finding}")
    return EXIT_PROBLEMS if report.writable_by_others else EXIT_OK


def _resolve_env(settings: EnvShare, env: str) -> tuple[str, Path]:
    record = discovery_for(settings.discovery_config()).snapshot(force=True).env(env)
    if record is not None:
        return record.name, Path(record.prefix)
    path = Path(env).expanduser()
    if (path / "conda-meta").is_dir():
        return path.name, path.resolve()
    raise ValueError(f"no environment called {env!r} (see `jupyter envshare kernels list`)")


def _snapshot(args: argparse.Namespace) -> Snapshot:
    settings = settings_from_args(args)
    return discovery_for(settings.discovery_config()).snapshot(force=True)


def _print_kernels(snap: Snapshot) -> None:
    rows = [("KERNEL", "ENVIRONMENT", "STATUS", "DISPLAY NAME")]
    for name, entry in snap.kernels.items():
        env = snap.env(entry.env)
        rows.append((name, entry.env, env_status(env) if env else "?", entry.display_name))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    offline = [e for e in snap.envs if not e.usable or any(p.severity != "info" for p in e.problems)]
    if offline or snap.problems:
        print("\nProblems:")
    for problem in snap.problems:
        print(f"  {problem.message}")
    for env in offline:
        state = "denied" if not env.allowed else ("broken" if not env.usable else "warning")
        for problem in env.problems:
            print(f"  {env.name} ({state}): {problem.message}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``jupyter envshare``."""
    parser = argparse.ArgumentParser(
        prog="jupyter envshare",
        description="Shared conda environments as Jupyter kernels: admin commands.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="an extra config file (.py or .json) with c.EnvShare.*")
    common.add_argument("--env-root", action="append", help="an extra environment root (repeatable)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    kernels = sub.add_parser("kernels", help="shared kernels")
    ksub = kernels.add_subparsers(dest="kernels_command", required=True)
    klist = ksub.add_parser("list", parents=[common], help="list shared kernels and problems")
    klist.set_defaults(func=cmd_kernels_list)
    ksync = ksub.add_parser("sync", parents=[common], help="write shared kernels as kernelspec files")
    ksync.add_argument("--dir", required=True, help="a kernels directory, e.g. .../share/jupyter/kernels")
    ksync.set_defaults(func=cmd_kernels_sync)
    for name, undo, summary in (
        ("seal", False, "make conda and pip refuse to change an environment (CEP 22, PEP 668)"),
        ("unseal", True, "remove the markers written by seal"),
    ):
        sealer = sub.add_parser(name, parents=[common], help=summary, description=summary)
        sealer.add_argument("env", help="environment name (or prefix path)")
        if not undo:
            sealer.add_argument("--message", help="the refusal message (default: advice naming the contact)")
        sealer.set_defaults(func=cmd_seal, undo=undo, message=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jupyter envshare`` / ``jupyter-envshare``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Problems are part of each command's output; the library's log lines would only repeat them.
    logging.getLogger("jupyter_envshare").setLevel(logging.CRITICAL)
    try:
        code: int = args.func(args)
    except (OSError, ValueError) as err:
        print(f"jupyter envshare: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
