"""``jupyter envshare kernels list|sync`` and ``seal``/``unseal``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import EnvShare
from ..discovery import SharedEnv, Snapshot, discovery_for
from ..kernelspecs import env_status, sync_kernelspecs
from ..seal import seal, seal_message, unseal
from .common import EXIT_OK, EXIT_PROBLEMS, CommandError, add_common, settings_from_args, snapshot_from_args


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
    snap = snapshot_from_args(args)
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
    snap = snapshot_from_args(args)
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
    raise CommandError(f"no environment called {env!r} (see `jupyter envshare list`)")


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


def register(sub: Any) -> None:
    """Add ``kernels list|sync``, ``seal`` and ``unseal``."""
    kernels = sub.add_parser("kernels", help="shared kernels")
    ksub = kernels.add_subparsers(dest="kernels_command", required=True)
    klist = ksub.add_parser("list", help="list shared kernels and problems")
    add_common(klist)
    klist.set_defaults(func=cmd_kernels_list)
    ksync = ksub.add_parser("sync", help="write shared kernels as kernelspec files")
    add_common(ksync)
    ksync.add_argument("--dir", required=True, help="a kernels directory, e.g. .../share/jupyter/kernels")
    ksync.set_defaults(func=cmd_kernels_sync)
    for name, undo, summary in (
        ("seal", False, "make conda and pip refuse to change an environment (CEP 22, PEP 668)"),
        ("unseal", True, "remove the markers written by seal"),
    ):
        sealer = sub.add_parser(name, help=summary, description=summary)
        add_common(sealer)
        sealer.add_argument("env", help="environment name (or prefix path)")
        if not undo:
            sealer.add_argument("--message", help="the refusal message (default: advice naming the contact)")
        sealer.set_defaults(func=cmd_seal, undo=undo, message=None)
