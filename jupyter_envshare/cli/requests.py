"""``jupyter envshare requests list|show|approve|reject|done`` and ``usage``: the queue in a terminal."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from rich.table import Table

from ..config import current_user
from ..install_requests import RequestService
from ..store import RequestStore
from ..store.spool_ingest import ingest_spool
from .common import EXIT_OK, add_common, console, print_json, service_from_args, settings_from_args, warn

DECISIONS = {"approve": "approved", "reject": "rejected", "done": "done"}


def _store(args: argparse.Namespace) -> RequestStore:
    settings = settings_from_args(args)
    store = RequestStore(settings.database_url)
    store.migrate()
    ingest_spool(store, settings.spool_dir, user=current_user())  # this admin's own kernels count too
    return store


def cmd_requests_list(args: argparse.Namespace) -> int:
    """The queue: open requests by demand first."""
    store = _store(args)
    found = store.list(env=args.env, status=args.status)
    if args.json:
        print_json({"requests": [r.as_json() for r in found]})
        return EXIT_OK
    table = Table(title=f"{len(found)} requests", title_justify="left")
    for column in ("ID", "STATUS", "ENV", "SPECS", "REQUESTER", "+1", "ATTEMPTS", "FILED"):
        table.add_column(column, no_wrap=column not in ("SPECS",))
    for r in found:
        table.add_row(
            str(r.id),
            r.status,
            r.env,
            " ".join(r.specs),
            r.requester,
            str(len(r.supporters)),
            str(r.attempts),
            r.created_at.strftime("%Y-%m-%d"),
        )
    console().print(table)
    return EXIT_OK


def cmd_requests_show(args: argparse.Namespace) -> int:
    """One request with its reason, supporters and history."""
    request = _store(args).get(args.id)
    if args.json:
        print_json({"request": request.as_json()})
        return EXIT_OK
    out = console()
    out.print(f"[bold]#{request.id}[/] {request.status}: {' '.join(request.specs)} in {request.env}")
    out.print(
        f"requested by {request.requester} on {request.created_at:%Y-%m-%d %H:%M}: {request.reason}",
        markup=False,
    )
    for supporter in request.supporters:
        out.print(f"  +1 {supporter.user} {supporter.reason}", markup=False)
    for change in request.history:
        out.print(
            f"  {change.at:%Y-%m-%d %H:%M} {change.actor}: "
            f"{change.from_status or '-'} -> {change.to_status} {change.comment}",
            markup=False,
        )
    return EXIT_OK


def cmd_requests_decide(args: argparse.Namespace) -> int:
    """Approve, reject or mark done, as the admin at this terminal."""
    request = _store(args).transition(args.id, current_user(), DECISIONS[args.decision], args.comment or "")
    if args.json:
        print_json({"request": request.as_json()})
    else:
        console().print(f"#{request.id} is now {request.status}")
    return EXIT_OK


def cmd_usage(args: argparse.Namespace) -> int:
    """Environments by last use, launches per kernel, distinct users, intercepted packages."""
    report = RequestService(_store(args), service_from_args(args)).usage()
    if args.json:
        print_json(report)
        return EXIT_OK
    envs = Table(title="environments, least recently used first", title_justify="left")
    for column in ("ENV", "LAUNCHES", "USERS", "LAST USED"):
        envs.add_column(column)
    for env in report["envs"]:
        last = _day(env["last_used"]) if env["last_used"] else "never"
        envs.add_row(
            env["env"] + ("" if env["present"] else " (no longer installed)"),
            str(env["launches"]),
            str(env["users"]),
            last,
        )
    console().print(envs)
    if not any(env["present"] for env in report["envs"]):
        warn(
            "no shared environment is visible from here (EnvShare.env_roots, env_prefixes, catalog): "
            "the environments above are only those launched, and all look uninstalled"
        )
    kernels = Table(title="kernel launches", title_justify="left")
    for column in ("ENV", "KERNEL", "KERNELSPEC", "LAUNCHES", "USERS", "LAST USED"):
        kernels.add_column(column)
    for row in report["launches"]:
        kernels.add_row(
            row["env"],
            row["kernel"],
            row["kernel_name"] or "-",
            str(row["launches"]),
            str(row["users"]),
            _day(row["last_used"]) if row["last_used"] else "-",
        )
    console().print(kernels)
    demand = Table(title="intercepted install attempts", title_justify="left")
    for column in ("ENV", "PACKAGE", "ATTEMPTS", "USERS"):
        demand.add_column(column)
    for attempt in report["attempts"]:
        demand.add_row(attempt["env"], attempt["package"], str(attempt["attempts"]), str(attempt["users"]))
    console().print(demand)
    return EXIT_OK


def _day(iso: str) -> str:
    return f"{datetime.fromisoformat(iso):%Y-%m-%d}"


def register(sub: Any) -> None:
    """Add ``requests ...`` and ``usage``."""
    requests = sub.add_parser("requests", help="the request queue (admins)")
    rsub = requests.add_subparsers(dest="requests_command", required=True)
    listing = rsub.add_parser("list", help="requests, most demanded open ones first")
    add_common(listing)
    listing.add_argument("--env")
    listing.add_argument("--status", choices=["open", "approved", "rejected", "done", "withdrawn"])
    listing.set_defaults(func=cmd_requests_list)
    show = rsub.add_parser("show", help="one request")
    add_common(show)
    show.add_argument("id", type=int)
    show.set_defaults(func=cmd_requests_show)
    for decision in DECISIONS:
        parser = rsub.add_parser(decision, help=f"{decision} a request")
        add_common(parser)
        parser.add_argument("id", type=int)
        parser.add_argument("--comment", help="shown to the requester")
        parser.set_defaults(func=cmd_requests_decide, decision=decision)
    usage = sub.add_parser("usage", help="which environments are used, by how many, and what is missing")
    add_common(usage)
    usage.set_defaults(func=cmd_usage)
