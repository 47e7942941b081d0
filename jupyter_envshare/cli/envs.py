"""``jupyter envshare list|show|drift|stamp|lock|export|doctor``: environments for admins."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..doctor import doctor
from ..export import write_export
from ..lockfiles import LOCK_FORMATS, write_lock
from ..packages import CONDA
from ..provenance import read_provenance
from ..service import EnvNotFound, EnvService, jsonable
from ..sidecar import stamp
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PROBLEMS,
    CommandError,
    add_common,
    console,
    error_console,
    print_json,
    service_from_args,
    settings_from_args,
)

LOCK_SUFFIX = {"explicit": "explicit.txt", "conda-lock": "conda-lock.yml", "pixi": "pixi.lock"}
STATUS_STYLE = {"in-sync": "green", "drifted": "yellow", "unlocked": "cyan", "unavailable": "red"}


def _env(service: EnvService, name: str) -> Any:
    try:
        return service.env(name, include_hidden=True)
    except EnvNotFound as err:
        raise CommandError(str(err).replace("GET envs", "`jupyter envshare list`")) from err


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=error_console(),
        transient=True,
    )


def cmd_list(args: argparse.Namespace) -> int:
    """Every environment with its status."""
    service = service_from_args(args)
    envs = service.envs(include_hidden=True)
    rows = []
    with _progress() as progress:
        task = progress.add_task("checking environments", total=len(envs))
        for env in envs:
            rows.append(service.summary(env))
            progress.advance(task)
    if args.json:
        print_json({"envs": rows})
    else:
        table = Table(title=f"{len(rows)} shared environments", title_justify="left")
        for column in ("ENVIRONMENT", "STATUS", "PACKAGES", "KERNELS", "BUILT", "NOTES"):
            table.add_column(column, no_wrap=column != "NOTES")
        for row in rows:
            style = STATUS_STYLE.get(row["status"], "")
            notes = "denied" if not row["allowed"] else "; ".join(p["message"] for p in row["problems"])[:120]
            table.add_row(
                row["name"],
                f"[{style}]{row['status']}[/]" if style else row["status"],
                "" if row["package_count"] is None else str(row["package_count"]),
                str(len(row["kernels"])),
                (row["built_at"] or "")[:10],
                notes,
            )
        console().print(table)
    return EXIT_PROBLEMS if any(r["status"] in ("drifted", "unavailable") for r in rows) else EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """One environment: provenance, channels, kernels, history."""
    service = service_from_args(args)
    env = _env(service, args.env)
    detail = service.detail(env.name, include_hidden=True)
    if args.json:
        print_json(detail)
        return EXIT_OK
    out = console()
    prov = detail["provenance"]
    out.print(f"[bold]{detail['name']}[/]  {detail['prefix']}  status: {detail['status']}")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    spec, lock, git, builder = (
        prov["spec"] or {},
        prov["lock"] or {},
        prov["git"] or {},
        prov["builder"] or {},
    )
    for label, value in (
        ("spec", spec.get("path")),
        (
            "lock",
            f"{lock.get('path')} ({lock.get('format')}, {lock.get('package_count')} packages)"
            if lock
            else None,
        ),
        ("git", f"{git.get('remote_url') or '-'} @ {git.get('sha') or '-'}" if git else None),
        ("built", f"{prov['built_at'] or '-'} by {builder.get('user') or '-'}@{builder.get('host') or '-'}"),
        ("channels", ", ".join(detail["channels"]) or None),
        ("kernels", ", ".join(k["name"] for k in detail["kernels"]) or "none"),
        ("packages", None if detail["package_count"] is None else str(detail["package_count"])),
    ):
        if value:
            facts.add_row(label, str(value))
    out.print(facts)
    if detail["history"]:
        history = Table(title="history", title_justify="left")
        for column in ("DATE", "TOOL", "COMMAND", "+", "-"):
            history.add_column(column)
        for txn in detail["history"]:
            history.add_row(
                (txn["date"] or "?")[:19],
                txn["tool"],
                (txn["command"] or "")[:70],
                str(len(txn["added"])),
                str(len(txn["removed"])),
            )
        out.print(history)
    for problem in detail["problems"]:
        out.print(f"[yellow]{problem['severity']}[/]: {problem['message']}")
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    """Installed state against the lock (``--deep`` also hashes every file)."""
    service = service_from_args(args)
    env = _env(service, args.env)
    if args.deep:
        with _progress() as progress:
            task = progress.add_task(f"hashing {env.name}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = service.drift_report(env, deep=True, progress=advance)
    else:
        report = service.drift_report(env)
    if args.json:
        print_json(report.as_json())
    else:
        out = console()
        lock = report.lock
        out.print(
            f"[bold]{env.name}[/]: [{STATUS_STYLE.get(report.status, '')}]{report.status}[/]"
            + (f" against {lock.path} ({lock.format})" if lock else "")
        )
        if report.changes:
            counts = Counter(c.kind for c in report.changes)
            out.print(", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
            table = Table()
            for column in ("KIND", "PACKAGE", "LOCKED", "INSTALLED"):
                table.add_column(column)
            for change in report.changes:
                table.add_row(
                    change.kind, change.package, change.locked or "-", change.installed or change.path or "-"
                )
            out.print(table)
        for finding in report.findings:
            out.print(f"[yellow]{finding.severity}[/]: {finding.message}")
        if report.status == "unlocked":
            out.print("No lock is known: `jupyter envshare stamp ENV --spec FILE --lock FILE` records one.")
    return {"in-sync": EXIT_OK, "drifted": EXIT_PROBLEMS}.get(report.status, EXIT_ERROR)


def cmd_stamp(args: argparse.Namespace) -> int:
    """Record an environment's spec, lock, git commit and builder in its sidecar."""
    service = service_from_args(args)
    env = _env(service, args.env)
    if not args.spec and not args.lock:
        raise CommandError("stamp needs --spec and/or --lock")
    sidecar = stamp(Path(env.prefix), spec=args.spec, lock=args.lock, git=args.git)
    if args.json:
        print_json({"env": env.name, "sidecar": sidecar.to_json()})
    else:
        console().print(f"stamped {env.name}: {Path(env.prefix) / 'conda-meta' / 'envshare'}")
        for key, value in sidecar.to_json().items():
            if value:
                console().print(f"  {key}: {value}")
    return EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    """Write an environment's installed state as a lock file."""
    service = service_from_args(args)
    env = _env(service, args.env)
    state = service.drift_engine.installed(env.prefix)
    if not state.packages:
        raise CommandError(f"{env.name} has no readable package records")
    output = Path(args.output or f"{env.name}.{LOCK_SUFFIX[args.format]}")
    channels = sorted({p.channel for p in state.packages if p.kind == CONDA and p.channel})
    info = write_lock(state.packages, args.format, output, platform=service.platform, channels=channels)
    if args.json:
        print_json(
            {
                "env": env.name,
                "path": str(output),
                "format": info.format,
                "sha256": info.sha256,
                "packages": len(info.packages),
                "problems": jsonable(info.problems),
            }
        )
    else:
        console().print(
            f"{output}: {len(info.packages)} packages ({args.format}, sha256 {info.sha256[:12]}...)"
        )
        for problem in info.problems:
            console().print(f"[yellow]{problem.severity}[/]: {problem.message}")
    return EXIT_OK if not state.findings else EXIT_PROBLEMS


def cmd_export(args: argparse.Namespace) -> int:
    """A spec per environment plus an inventory, to re-create the installation elsewhere."""
    service = service_from_args(args)
    envs = [e for e in service.envs(include_hidden=True) if e.usable]
    items = []
    with _progress() as progress:
        task = progress.add_task("exporting", total=len(envs))
        for env in envs:
            state = service.drift_engine.installed(env.prefix)
            prov = read_provenance(env, platform=service.platform)
            facts = {
                "prefix": env.prefix,
                "path": env.path,
                "allowed": env.allowed,
                "status": service.status(env),
                "kernels": [k.name for k in env.kernels],
                "lock_sha256": prov.lock.sha256 if prov.lock else None,
                "built_at": jsonable(prov.built_at),
            }
            items.append((env.name, state.packages, list(prov.channels), facts))
            progress.advance(task)
    exported = write_export(Path(args.dir), items, builds=not args.no_builds, platform=service.platform)
    if args.json:
        print_json({"dir": str(Path(args.dir).resolve()), "environments": [e.entry for e in exported]})
    else:
        console().print(
            f"{len(exported)} environments exported to {args.dir} (inventory.json + one spec each)"
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Health of the whole installation."""
    settings = settings_from_args(args)
    service = service_from_args(args)
    with _progress() as progress:
        task = progress.add_task("examining", total=len(service.envs(include_hidden=True)))
        findings = doctor(service, settings, progress=lambda _name: progress.advance(task))
    if args.json:
        print_json({"findings": [jsonable(f) for f in findings]})
    else:
        table = Table(title=f"{len(findings)} findings", title_justify="left")
        for column in ("SEVERITY", "WHERE", "KIND", "FINDING"):
            table.add_column(column, no_wrap=column != "FINDING")
        for finding in findings:
            style = {"error": "red", "warning": "yellow"}.get(finding.severity, "")
            table.add_row(
                f"[{style}]{finding.severity}[/]" if style else finding.severity,
                finding.scope,
                finding.kind,
                finding.message,
            )
        console().print(table)
    return EXIT_PROBLEMS if any(f.severity in ("error", "warning") for f in findings) else EXIT_OK


def register(sub: Any) -> None:
    """Add the environment commands."""

    def command(name: str, func: Any, summary: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=summary)
        add_common(parser)
        parser.set_defaults(func=func)
        return parser

    command("list", cmd_list, "every shared environment with its status")
    command("show", cmd_show, "one environment: provenance, channels, kernels, history").add_argument("env")
    drift = command("drift", cmd_drift, "installed state against the lock (exit 0 in sync, 1 drifted)")
    drift.add_argument("env")
    drift.add_argument("--deep", action="store_true", help="also hash every file (slow)")
    stamper = command("stamp", cmd_stamp, "record spec, lock, git commit and builder in the env's sidecar")
    stamper.add_argument("env")
    stamper.add_argument("--spec", help="the environment.yml it was built from")
    stamper.add_argument("--lock", help="the lock file it was installed from")
    stamper.add_argument("--git", action="store_true", help="record the git remote and commit of the spec")
    locker = command("lock", cmd_lock, "write the installed state as a lock file")
    locker.add_argument("env")
    locker.add_argument("--format", choices=sorted(LOCK_FORMATS), default="explicit")
    locker.add_argument("-o", "--output", help="file to write (default: ENV.<format suffix>)")
    exporter = command(
        "export", cmd_export, "a spec per environment plus an inventory, for a new installation"
    )
    exporter.add_argument(
        "--dir", default="envshare-export", help="output directory (default envshare-export)"
    )
    exporter.add_argument("--no-builds", action="store_true", help="pin versions only, not build strings")
    command("doctor", cmd_doctor, "health of the whole installation")
