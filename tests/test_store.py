"""The request store, on a SQLite file and on a real PostgreSQL started by the tests (tests/postgres.py)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from jupyter_envshare.spool import SPOOL_FILE, append_event, make_event
from jupyter_envshare.store import (
    STATUSES,
    InstallRequest,
    InvalidTransition,
    NotAllowed,
    RequestNotFound,
    RequestStore,
    StoreError,
    StoreUnavailable,
)
from jupyter_envshare.store.engine import Conflict, database_errors
from jupyter_envshare.store.migrate import head_revision
from jupyter_envshare.store.models import VERSION_TABLE, Base
from jupyter_envshare.store.spool_ingest import OFFSET_FILE, ingest_spool
from tests.postgres import PostgresServer

ENV = "isis4.3.0"
UTC = timezone.utc
HOSTILE = [
    "<script>alert('x')</script>",
    "'; DROP TABLE envshare_requests; --",
    'Robert"); DELETE FROM envshare_events; --',
    "control \x01\x02\x07\x08\x0b\x0c\x1b[31mred\x1b[0m \x7f tab\tnewline\nreturn\r end",
    "unicode: \u202eevil\u202c \u2028 \ufeff emoji \U0001f40d zero\u200bwidth",
    "percent %s %(name)s {0} {name} \\N \\x00 $$ $1 ?",
    "  leading and trailing spaces  ",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in a directory not made yet, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'envshare' / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[RequestStore]:
    """A migrated store."""
    with RequestStore(store_url) as opened:
        opened.migrate()
        yield opened


def event(kind: str, user: str, *, time: str | None = None, **fields: Any) -> dict[str, Any]:
    """A spool event as kernels and the provisioner write it."""
    made = make_event(kind, user, **fields)
    if time is not None:
        made["time"] = time
    return made


def attempt(user: str, *packages: str, env: str = ENV, time: str | None = None) -> dict[str, Any]:
    return event(
        "install-attempt",
        user,
        time=time,
        env=env,
        packages=list(packages),
        tool="pip",
        action="install",
        mode="advise",
        via="ipython",
    )


def launch(user: str, kernel: str = "python3", *, env: str = ENV, time: str | None = None) -> dict[str, Any]:
    return event("launch", user, time=time, env=env, kernel=kernel, prefix=f"/nfs/envs/{env}")


def intent(user: str, specs: list[str], reason: str = "for my thesis", env: str = ENV) -> dict[str, Any]:
    return event("request-intent", user, env=env, specs=specs, reason=reason)


def statuses(request: InstallRequest) -> list[tuple[str, str | None, str]]:
    return [(change.actor, change.from_status, change.to_status) for change in request.history]


# -- requests ------------------------------------------------------------------------------------


def test_full_lifecycle_with_two_users_and_an_admin(store: RequestStore) -> None:
    # Given alice's request
    request, created = store.create(ENV, ["polars >=1.0"], "Faster joins for the survey pipeline", "alice")
    assert created
    assert (request.env, request.specs, request.requester, request.status) == (
        ENV,
        ("polars >=1.0",),
        "alice",
        "open",
    )
    assert request.created_at.tzinfo is not None

    # When bob asks for the same thing, an admin approves it and later marks it done
    folded, created = store.create(ENV, ["polars>=1.0"], "Me too: lazy frames", "bob")
    approved = store.transition(request.id, "root-admin", "approved", "Going into isis4.4.0")
    done = store.transition(request.id, "root-admin", "done", "Published in isis4.4.0")

    # Then bob supports alice's request instead of filing a duplicate, and every change is on record
    assert (folded.id, created) == (request.id, False)
    assert [(s.user, s.reason) for s in folded.supporters] == [("bob", "Me too: lazy frames")]
    assert approved.status == "approved"
    assert approved.admin_comment == "Going into isis4.4.0"
    assert done.status == "done"
    assert done.admin_comment == "Published in isis4.4.0"
    assert statuses(done) == [
        ("alice", None, "open"),
        ("root-admin", "open", "approved"),
        ("root-admin", "approved", "done"),
    ]
    assert [change.comment for change in done.history] == [
        "",
        "Going into isis4.4.0",
        "Published in isis4.4.0",
    ]
    assert done.updated_at >= approved.updated_at > request.created_at
    assert store.get(request.id) == done
    assert [r.id for r in store.list(user="bob")] == [request.id]
    assert [r.id for r in store.list(user="alice")] == [request.id]
    assert store.list(user="carol") == []
    document = json.loads(json.dumps(done.as_json()))
    assert document["specs"] == ["polars >=1.0"]
    assert document["supporters"][0]["user"] == "bob"
    assert document["history"][2]["to_status"] == "done"
    assert datetime.fromisoformat(document["created_at"]) == request.created_at


def test_a_decision_without_a_comment_keeps_the_earlier_comment(store: RequestStore) -> None:
    # Given a request approved with a comment
    request, _ = store.create(ENV, ["h5py"], "HDF5 files", "alice")
    store.transition(request.id, "root-admin", "approved", "Going into isis4.4.0")
    # When it is marked done without one
    done = store.transition(request.id, "root-admin", "done")
    # Then the request still says what the admin said, and the history has both decisions as made
    assert done.admin_comment == "Going into isis4.4.0"
    assert [(c.to_status, c.comment) for c in done.history[1:]] == [
        ("approved", "Going into isis4.4.0"),
        ("done", ""),
    ]


def test_specs_that_name_no_package_are_stored(store: RequestStore) -> None:
    # A local path or a bare wildcard names no package: nothing to match attempts on, still a request
    # (such a request intent in a spool must not stop the spool's other events from being counted)
    request, created = store.create(ENV, ["./local"], "a local build", "alice")
    assert (created, store.get(request.id).specs) == (True, ("./local",))
    assert store.ingest([intent("bob", ["*"]), launch("bob")]) == 2
    assert [u.launches for u in store.usage()[0]] == [1]


def test_duplicates_fold_into_supporters(store: RequestStore) -> None:
    # Given an open request for two specs
    first, _ = store.create(ENV, ["Polars  >=1.0", " numpy"], "joins", "alice")

    # When others ask for the same set, written differently, or for something else
    same, same_created = store.create(ENV, ["numpy", "polars>=1.0"], "me too", "bob")
    again, again_created = store.create(ENV, ["NumPy", "polars >= 1.0"], "still", "bob")
    own, own_created = store.create(ENV, ["numpy", "polars >=1.0"], "mine", "alice")
    other_env, other_env_created = store.create("isis4.2.0", ["numpy", "polars >=1.0"], "older env", "bob")
    subset, subset_created = store.create(ENV, ["polars >=1.0"], "only polars", "carol")
    newer, newer_created = store.create(ENV, ["numpy", "polars >=2.0"], "newer polars", "carol")

    # Then the same set in the same env folds (once per user, never the requester); the rest are new
    assert (same.id, same_created, again.id, again_created) == (first.id, False, first.id, False)
    assert (own.id, own_created) == (first.id, False)
    assert [s.user for s in store.get(first.id).supporters] == ["bob"]
    assert store.get(first.id).specs == ("Polars  >=1.0", " numpy")  # stored as given
    assert other_env_created
    assert subset_created
    assert newer_created
    assert len({first.id, other_env.id, subset.id, newer.id}) == 4

    # And support() is idempotent, a no-op for the requester, and folding stops once a request is closed
    assert [s.user for s in store.support(first.id, "carol", "also").supporters] == ["bob", "carol"]
    assert [s.user for s in store.support(first.id, "carol", "twice").supporters] == ["bob", "carol"]
    assert [s.reason for s in store.get(first.id).supporters] == ["me too", "also"]
    assert [s.user for s in store.support(first.id, "alice").supporters] == ["bob", "carol"]
    store.transition(first.id, "admin", "rejected", "use the pinned env")
    reopened, reopened_created = store.create(ENV, ["numpy", "polars >=1.0"], "please reconsider", "dave")
    assert reopened_created
    assert reopened.id != first.id


def test_withdraw_is_for_the_requester_and_open_requests_only(store: RequestStore) -> None:
    # Given alice's open request, supported by bob
    request, _ = store.create(ENV, ["scipy"], "fits", "alice")
    store.support(request.id, "bob")

    # When bob tries to withdraw it
    with pytest.raises(NotAllowed, match="alice") as denied:
        store.withdraw(request.id, "bob")

    # Then it is refused (403) and nothing changed; alice can
    assert denied.value.status == 403
    assert store.get(request.id).status == "open"
    withdrawn = store.withdraw(request.id, "alice")
    assert withdrawn.status == "withdrawn"
    assert statuses(withdrawn)[-1] == ("alice", "open", "withdrawn")
    assert withdrawn.admin_comment == ""

    # And a withdrawn request cannot be withdrawn again, approved or supported (409)
    with pytest.raises(InvalidTransition) as again:
        store.withdraw(request.id, "alice")
    assert again.value.status == 409
    with pytest.raises(InvalidTransition, match="withdrawn"):
        store.transition(request.id, "admin", "approved")
    with pytest.raises(InvalidTransition):
        store.support(request.id, "carol")
    with pytest.raises(NotAllowed):  # who asks is checked before the status
        store.withdraw(request.id, "bob")
    approved, _ = store.create(ENV, ["astropy"], "coords", "alice")
    store.transition(approved.id, "admin", "approved")
    with pytest.raises(InvalidTransition):
        store.withdraw(approved.id, "alice")


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "done"),
        ([], "open"),
        ([], "withdrawn"),
        (["approved"], "approved"),
        (["approved"], "open"),
        (["rejected"], "approved"),
        (["rejected"], "done"),
        (["rejected"], "rejected"),
        (["approved", "done"], "rejected"),
        (["approved", "done"], "approved"),
        (["approved", "rejected"], "done"),
    ],
)
def test_invalid_transitions_are_refused(store: RequestStore, path: list[str], refused: str) -> None:
    # Given a request taken along `path`
    request, _ = store.create(ENV, ["xarray"], "cubes", "alice")
    for status in path:
        store.transition(request.id, "admin", status)
    before = store.get(request.id)

    # When an admin asks for a change its status does not allow
    with pytest.raises(InvalidTransition) as refusal:
        store.transition(request.id, "admin", refused, "nope")

    # Then it is a 409 that names both statuses, and nothing changed
    assert refusal.value.status == 409
    assert before.status in str(refusal.value)
    assert refused in str(refusal.value)
    assert store.get(request.id) == before


def test_unknown_requests_and_statuses(store: RequestStore) -> None:
    request, _ = store.create(ENV, ["dask"], "parallel", "alice")
    for missing in (request.id + 1000, 0, -1, 2**40):
        with pytest.raises(RequestNotFound) as not_found:
            store.get(missing)
        assert not_found.value.status == 404
        with pytest.raises(RequestNotFound):
            store.support(missing, "bob")
        with pytest.raises(RequestNotFound):
            store.withdraw(missing, "alice")
        with pytest.raises(RequestNotFound):
            store.transition(missing, "admin", "approved")
    with pytest.raises(ValueError, match="Unknown status"):
        store.transition(request.id, "admin", "merged")
    with pytest.raises(ValueError, match="Unknown status"):
        store.list(status="pending")
    assert set(STATUSES) == {"open", "approved", "rejected", "done", "withdrawn"}
    assert (StoreError.status, StoreUnavailable.status) == (500, 503)
    assert issubclass(StoreUnavailable, StoreError)
    assert issubclass(InvalidTransition, StoreError)


def test_bounds_are_enforced_with_messages(store: RequestStore) -> None:
    # At the limits: accepted
    request, _ = store.create(ENV, ["a" * 200] + [f"pkg{i}" for i in range(49)], "r" * 4000, "alice")
    assert len(request.specs) == 50
    assert len(request.reason) == 4000

    # Beyond them, or malformed: ValueError saying what is wrong
    refusals = [
        ({"reason": "r" * 4001}, "4001 characters"),
        ({"specs": ["b" * 201]}, "at most 200"),
        ({"specs": [f"pkg{i}" for i in range(51)]}, "at most 50 specs"),
        ({"specs": []}, "at least one spec"),
        ({"specs": ["numpy", "   "]}, "spec #2 must not be empty"),
        ({"specs": "numpy"}, "list of strings"),
        ({"reason": "nul \x00 byte"}, "NUL"),
        ({"reason": "lone \ud800 surrogate"}, "surrogate"),
        ({"user": ""}, "user name must not be empty"),
        ({"env": "e" * 256}, "environment name"),
    ]
    for change, message in refusals:
        arguments: dict[str, Any] = {"env": ENV, "specs": ["numpy"], "reason": "why", "user": "alice"}
        arguments.update(change)
        with pytest.raises(ValueError, match=message):
            store.create(**arguments)
    with pytest.raises(ValueError, match="comment"):
        store.transition(request.id, "admin", "approved", "c" * 4001)
    with pytest.raises(ValueError, match="reason"):
        store.support(request.id, "bob", "r" * 4001)
    assert [r.id for r in store.list()] == [request.id]


def test_hostile_text_round_trips_exactly(store: RequestStore, store_url: str) -> None:
    # Given requests, support and comments made of script tags, SQL fragments and control characters
    made = []
    for index, hostile in enumerate(HOSTILE):
        request, _ = store.create(hostile, [hostile, f"pkg{index} >=1"], hostile, hostile)
        store.support(request.id, f"bob{index}", hostile)
        store.transition(request.id, hostile, "approved", hostile)
        made.append(request.id)

    # When they are read back by another store (another server) and encoded as JSON
    with RequestStore(store_url) as other:
        read = [other.get(request_id) for request_id in made]
        listed = {r.id: r for r in other.list(env=HOSTILE[1])}

    # Then every character is intact
    for hostile, request in zip(HOSTILE, read, strict=True):
        assert request.env == hostile
        assert request.specs[0] == hostile
        assert request.reason == hostile
        assert request.requester == hostile
        assert request.supporters[0].reason == hostile
        assert request.admin_comment == hostile
        assert request.history[-1].actor == hostile
        assert request.history[-1].comment == hostile
        assert json.loads(json.dumps(request.as_json())) == request.as_json()
    assert listed[made[1]].reason == HOSTILE[1]
    assert len(store.list()) == len(HOSTILE)  # no fragment was executed as SQL


def test_list_filters_and_sorts_by_demand(store: RequestStore) -> None:
    # Given open requests with different demand, and closed ones
    quiet, _ = store.create(ENV, ["quiet"], "q", "alice")
    supported, _ = store.create(ENV, ["supported"], "s", "alice")
    for user in ("bob", "carol"):
        store.support(supported.id, user)
    attempted, _ = store.create(ENV, ["attempted", "other"], "a", "bob")
    store.ingest([attempt(u, "attempted") for u in ("x", "y", "z")] + [attempt("w", "attempted", "other")])
    store.ingest([attempt("v", "attempted", env="isis4.2.0")])  # another env: not this request's demand
    elsewhere, _ = store.create("isis4.2.0", ["quiet"], "q", "carol")
    closed, _ = store.create(ENV, ["closed"], "c", "alice")
    store.transition(closed.id, "admin", "rejected")
    newest_closed, _ = store.create(ENV, ["closed2"], "c", "bob")
    store.withdraw(newest_closed.id, "bob")

    # When the queue is listed
    queue = store.list()

    # Then open requests come first, most demanded first (supporters + attempts), then the newest
    assert store.get(attempted.id).attempts == 4
    assert [r.id for r in queue] == [
        attempted.id,
        supported.id,
        elsewhere.id,
        quiet.id,
        newest_closed.id,
        closed.id,
    ]
    assert [r.demand for r in queue[:4]] == [4, 2, 0, 0]
    assert [r.id for r in store.list(env="isis4.2.0")] == [elsewhere.id]
    assert [r.id for r in store.list(status="rejected")] == [closed.id]
    assert [r.id for r in store.list(user="carol")] == [supported.id, elsewhere.id]
    assert [r.id for r in store.list(user="bob", status="open")] == [attempted.id, supported.id]
    assert [r.id for r in store.list(limit=2)] == [attempted.id, supported.id]
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=0)


# -- events and usage ----------------------------------------------------------------------------


def test_ingest_counts_each_event_once(store: RequestStore) -> None:
    # Given a batch larger than one transaction, with a repeated event and some garbage
    events = [launch(f"user{i % 7}") for i in range(450)] + [attempt("alice", "polars", "NumPy")]
    garbage: list[Any] = [
        {"kind": "launch", "user": "x", "env": ENV, "kernel": "k"},  # no id
        {"id": 7, "kind": "launch", "user": "x", "env": ENV, "kernel": "k"},
        {"id": "a", "kind": "launch", "user": "x", "kernel": "k"},  # no env
        {"id": "b", "kind": "launch", "user": "x", "env": ENV},  # no kernel
        {"id": "c", "kind": "install-attempt", "user": "x", "env": ENV, "packages": "polars"},
        {"id": "d", "kind": "launch", "user": "x\x00", "env": ENV, "kernel": "k"},
        {"id": "e", "kind": "launch", "user": "x", "env": ENV, "kernel": "k", "extra": float("nan")},
        {"id": "f" * 129, "kind": "launch", "user": "x", "env": ENV, "kernel": "k"},
        "not a mapping",
    ]

    # When it is ingested, then ingested again (a restart that lost its place)
    first = store.ingest([*events, events[3], *garbage])
    second = store.ingest(events)

    # Then every well-formed event counts once
    assert (first, second) == (451, 0)
    usage, attempts = store.usage()
    assert [(u.env, u.kernel, u.launches, u.users) for u in usage] == [(ENV, "python3", 450, 7)]
    assert [(a.package, a.attempts) for a in attempts] == [("numpy", 1), ("polars", 1)]


def test_request_intents_become_requests_or_support(store: RequestStore) -> None:
    # Given intents from the guard's %envshare request: two users, the same specs written differently
    events = [
        intent("dave", ["polars>=1.0", "pyarrow"], "parquet files"),
        intent("erin", ["PyArrow", "polars >=1.0"], "same here"),
        intent("dave", ["polars>=1.0", "pyarrow"], "asking twice"),
        intent("frank", [f"p{i}" for i in range(51)], "too many"),  # recorded, but not a request
        intent("gina", ["scipy"], "r" * 4001),
    ]

    # When they are ingested (twice)
    new = store.ingest(events)
    again = store.ingest(events)

    # Then the first became dave's request and erin supports it; nothing was filed twice
    assert (new, again) == (5, 0)
    (request,) = store.list()
    assert (request.requester, request.specs, request.reason) == (
        "dave",
        ("polars>=1.0", "pyarrow"),
        "parquet files",
    )
    assert [(s.user, s.reason) for s in request.supporters] == [("erin", "same here")]
    assert statuses(request) == [("dave", None, "open")]

    # And an intent for an open request made through the API is support, attributed to the spool's owner
    api, _ = store.create(ENV, ["scipy"], "fits", "alice")
    forged = intent("alice", ["scipy"], "forged")  # a spool is written by its owner's kernels
    assert store.ingest([forged], user="henry") == 1
    assert [(s.user, s.reason) for s in store.get(api.id).supporters] == [("henry", "forged")]


def test_usage_aggregates(store: RequestStore) -> None:
    # Given launches and attempts over time, in two envs
    store.ingest(
        [
            launch("alice", time="2025-01-10T09:00:00.000Z"),
            launch("alice", time="2025-03-01T09:00:00.000+00:00"),
            launch("bob", time="2025-03-02T10:30:00.000+01:00"),
            launch("bob", "ir", time="2025-03-03T09:00:00.000Z"),
            launch("carol", env="isis3.6.0", time="2024-06-01T09:00:00.000Z"),
            event("launch-failed", "dave", env=ENV, kernel="python3", reason="no python"),
            attempt("alice", "polars", time="2025-03-01T10:00:00.000Z"),
            attempt("bob", "polars", "numpy", time="2025-03-04T10:00:00.000Z"),
            attempt("bob", "polars", time="2025-01-04T10:00:00.000Z"),
            attempt("carol", "numpy", env="isis3.6.0", time="2024-06-01T10:00:00.000Z"),
        ]
    )

    # When usage is read, overall and since March
    usage, attempts = store.usage()
    recent_usage, recent_attempts = store.usage(since=datetime(2025, 3, 1, tzinfo=UTC))

    # Then launches are per env and kernel with distinct users and last use; attempts per package
    assert [(u.env, u.kernel, u.launches, u.users, u.last_used) for u in usage] == [
        ("isis3.6.0", "python3", 1, 1, datetime(2024, 6, 1, 9, tzinfo=UTC)),
        (ENV, "ir", 1, 1, datetime(2025, 3, 3, 9, tzinfo=UTC)),
        (ENV, "python3", 3, 2, datetime(2025, 3, 2, 9, 30, tzinfo=UTC)),
    ]
    assert [(a.env, a.package, a.attempts, a.users, a.last_at) for a in attempts] == [
        (ENV, "polars", 3, 2, datetime(2025, 3, 4, 10, tzinfo=UTC)),
        ("isis3.6.0", "numpy", 1, 1, datetime(2024, 6, 1, 10, tzinfo=UTC)),
        (ENV, "numpy", 1, 1, datetime(2025, 3, 4, 10, tzinfo=UTC)),
    ]
    assert [(u.kernel, u.launches, u.users) for u in recent_usage] == [("ir", 1, 1), ("python3", 2, 2)]
    # and per environment, users are counted once over all its kernels
    assert [(u.env, u.launches, u.users, u.last_used) for u in store.env_usage()] == [
        ("isis3.6.0", 1, 1, datetime(2024, 6, 1, 9, tzinfo=UTC)),
        (ENV, 4, 2, datetime(2025, 3, 3, 9, tzinfo=UTC)),
    ]
    since_march = store.env_usage(since=datetime(2025, 3, 1, tzinfo=UTC))
    assert [(u.env, u.launches) for u in since_march] == [(ENV, 3)]
    assert [(a.package, a.attempts) for a in recent_attempts] == [("polars", 2), ("numpy", 1)]
    assert json.dumps([row.as_json() for row in [*usage, *attempts]])

    # And a request counts each attempt in its env once, even one naming several of its packages
    request, _ = store.create(ENV, ["polars", "numpy>=2"], "both", "erin")
    assert request.attempts == 3


def test_spool_ingest_survives_restarts_without_loss_or_double_counting(
    store_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    for _i in range(5):
        append_event(str(spool), make_event("launch", "alice", env=ENV, kernel="python3", prefix="/p"))

    # Given a server that ingested the spool, then stopped
    with RequestStore(store_url) as first:
        first.migrate()
        assert ingest_spool(first, spool) == 5
        assert ingest_spool(first, spool) == 0
    assert (spool / OFFSET_FILE).exists()

    # When kernels keep writing, one write is torn, and a new server (a restart) ingests
    for _i in range(3):
        append_event(str(spool), make_event("install-attempt", "alice", env=ENV, packages=["polars"]))
    torn = json.dumps(make_event("launch", "alice", env=ENV, kernel="ir", prefix="/p"))
    with (spool / SPOOL_FILE).open("a") as fh:
        fh.write(torn[:25])
    with RequestStore(store_url) as second:
        second.migrate()
        assert ingest_spool(second, spool) == 3  # the torn line is left for next time

        # Then the rest of the torn line arrives and is ingested, once
        with (spool / SPOOL_FILE).open("a") as fh:
            fh.write(torn[25:] + "\n")
        assert ingest_spool(second, spool) == 1
        assert ingest_spool(second, spool) == 0

        # And losing or garbling the offset file re-reads the spool but counts nothing twice
        (spool / OFFSET_FILE).unlink()
        assert ingest_spool(second, spool) == 0
        (spool / OFFSET_FILE).write_text("garbage")
        assert ingest_spool(second, spool) == 0
        usage, attempts = second.usage()
    assert {(u.kernel, u.launches) for u in usage} == {("python3", 5), ("ir", 1)}
    assert [(a.package, a.attempts) for a in attempts] == [("polars", 3)]


def test_spool_ingest_handles_odd_spools(store: RequestStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    assert ingest_spool(store, spool) == 0  # no spool yet
    spool.mkdir()
    kept = make_event("launch", "alice", env=ENV, kernel="python3", prefix="/p")
    lines = [
        "not json\n",
        "x" * 70_000 + "\n",  # an absurdly long line
        '{"id": "half',  # a writer died mid-line ...
    ]
    (spool / SPOOL_FILE).write_text(
        "".join(lines) + json.dumps(kept) + "\n"
    )  # ... and the next event followed
    assert ingest_spool(store, spool) == 1
    assert store.usage()[0][0].launches == 1

    # A spool replaced by a new file (same size or not) is read from its start
    (spool / SPOOL_FILE).unlink()
    append_event(str(spool), make_event("launch", "bob", env=ENV, kernel="python3", prefix="/p"))
    assert ingest_spool(store, spool) == 1
    # Events claim any user; the spool's owner can be imposed
    append_event(str(spool), make_event("launch", "mallory-as-alice", env=ENV, kernel="ir", prefix="/p"))
    assert ingest_spool(store, spool, user="bob") == 1
    assert {(u.kernel, u.users) for u in store.usage()[0]} == {("python3", 2), ("ir", 1)}


def test_fingerprints_upsert_per_env_and_host(store: RequestStore) -> None:
    # Given fingerprints reported by two nodes, one of them twice
    store.record_fingerprint(ENV, "gpu-07", "sha256:aaa", 210)
    store.record_fingerprint(ENV, "cpu-01", "sha256:aaa", 210)
    store.record_fingerprint("isis4.2.0", "gpu-07", "sha256:old", 200)
    store.record_fingerprint(ENV, "gpu-07", "sha256:bbb", 211)

    # When they are read per env
    rows = store.fingerprints(ENV)

    # Then each host has one row with what it reported last
    assert [(f.host, f.fingerprint, f.package_count) for f in rows] == [
        ("cpu-01", "sha256:aaa", 210),
        ("gpu-07", "sha256:bbb", 211),
    ]
    assert rows[1].seen_at >= rows[0].seen_at
    assert [f.fingerprint for f in store.fingerprints("isis4.2.0")] == ["sha256:old"]
    assert store.fingerprints("nope") == []
    with pytest.raises(ValueError, match="package count"):
        store.record_fingerprint(ENV, "h", "x", -1)
    with pytest.raises(ValueError, match="fingerprint"):
        store.record_fingerprint(ENV, "h", "x" * 129, 1)


# -- schema and concurrency ----------------------------------------------------------------------


def test_migrations_create_exactly_the_models(store: RequestStore, store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            assert compare_metadata(context, Base.metadata) == []
            version = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    finally:
        engine.dispose()
    assert version == [head_revision()]
    store.migrate()  # again: a no-op


MIGRATE_IN_A_PROCESS = """
import sys, time
from jupyter_envshare.store import RequestStore
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
with RequestStore(sys.argv[1]) as store:
    store.migrate()
"""


def test_concurrent_migrate_from_threads_and_processes(store_url: str) -> None:
    # Given servers starting at once against an empty database: processes and threads
    start = time.time() + 3.0
    processes = [
        subprocess.Popen([sys.executable, "-c", MIGRATE_IN_A_PROCESS, store_url, str(start)])
        for _ in range(4)
    ]
    barrier = threading.Barrier(6)

    def migrate() -> None:
        time.sleep(max(0.0, start - time.time()))
        barrier.wait(timeout=30)
        with RequestStore(store_url) as store:
            store.migrate()

    # When every one of them migrates
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(migrate) for _ in range(6)]
        errors = [f.exception(timeout=120) for f in futures]
    codes = [p.wait(timeout=120) for p in processes]

    # Then none failed and the schema is at head, once
    assert errors == [None] * 6
    assert codes == [0] * 4
    with RequestStore(store_url) as store:
        store.migrate()
        request, _ = store.create(ENV, ["numpy"], "after a crowded start", "alice")
        assert store.get(request.id).status == "open"
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    finally:
        engine.dispose()
    assert versions == [head_revision()]


def test_concurrent_identical_requests_fold_into_one(store: RequestStore, store_url: str) -> None:
    # Given twelve users (on several servers) asking for the same thing at the same moment
    barrier = threading.Barrier(12)
    stores = [RequestStore(store_url) for _ in range(3)]

    def ask(index: int) -> tuple[int, bool]:
        barrier.wait(timeout=30)
        request, created = stores[index % 3].create(
            ENV, ["polars >=1.0"], f"user{index} needs it", f"user{index}"
        )
        return request.id, created

    # When they all file it
    try:
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(ask, range(12)))
    finally:
        for opened in stores:
            opened.close()

    # Then there is one request; one user made it and the other eleven support it
    assert len({request_id for request_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    (request,) = store.list()
    assert len(request.supporters) == 11
    assert request.requester not in {s.user for s in request.supporters}

    # And supporting it from many threads while intents for it are ingested loses nothing
    intents = [intent(f"spool{i}", ["polars>=1.0"], "from the guard") for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        supports = [pool.submit(store.support, request.id, f"late{i}", "me too") for i in range(16)]
        ingests = [pool.submit(store.ingest, intents[i::4]) for i in range(4)]
        assert all(future.result(timeout=120).id == request.id for future in supports)
        assert sum(future.result(timeout=120) for future in ingests) == 20
    assert len(store.get(request.id).supporters) == 11 + 16 + 20


def test_collisions_between_transactions_are_retried(store: RequestStore) -> None:
    # Given work that collides with a concurrent transaction once (as a PostgreSQL deadlock would)
    calls = []

    def collides_once(session: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Conflict("deadlock detected")
        return "done"

    # When the store runs it, it runs it again
    assert store._run(collides_once) == "done"
    assert len(calls) == 2


def test_a_real_deadlock_is_a_retryable_conflict(postgres_url: str) -> None:
    # Given two transactions that lock two rows in opposite orders
    engine = create_engine(postgres_url)
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE pair (id integer PRIMARY KEY)"))
        setup.execute(text("INSERT INTO pair VALUES (1), (2)"))
    errors: list[BaseException] = []
    both_locked = threading.Barrier(2)

    def lock(first: int, second: int) -> None:
        try:
            with database_errors("test"), engine.begin() as connection:
                connection.execute(text("SELECT * FROM pair WHERE id = :i FOR UPDATE"), {"i": first})
                both_locked.wait(timeout=30)
                connection.execute(text("SELECT * FROM pair WHERE id = :i FOR UPDATE"), {"i": second})
        except StoreError as err:
            errors.append(err)

    # When both go on
    threads = [threading.Thread(target=lock, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()

    # Then PostgreSQL breaks the deadlock, and the store sees a conflict it may retry (503 if it persists)
    assert len(errors) == 1
    assert isinstance(errors[0], Conflict)
    assert errors[0].status == 503
    assert "too busy" in str(errors[0])


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "store.db"
    with RequestStore(f"sqlite:///{path}") as store:
        store.migrate()
        with store._engine.connect() as connection:  # the store's own connections: their pragmas
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


def test_urls() -> None:
    assert RequestStore("postgresql://u@db.example/envshare").url.drivername == "postgresql+psycopg"
    for bad, message in [
        ("mysql://u@h/db", "Unsupported database"),
        ("postgresql+psycopg2://u@h/db", "psycopg"),
        ("not a url", "not a database URL"),
    ]:
        with pytest.raises(ValueError, match=message):
            RequestStore(bad)


# -- faults --------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_fails_fast_with_an_actionable_message(tmp_path: Path) -> None:
    # Given a PostgreSQL URL where nothing listens, and a SQLite path that cannot exist
    store = RequestStore(f"postgresql+psycopg://envshare:s3cret@127.0.0.1:{_closed_port()}/envshare")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sqlite_store = RequestStore(f"sqlite:///{blocker / 'store.db'}")

    # When they are used
    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as down:
        store.ping()
    elapsed = time.monotonic() - began
    with pytest.raises(StoreUnavailable):
        store.create(ENV, ["numpy"], "r", "alice")
    with pytest.raises(StoreUnavailable) as no_file:
        sqlite_store.migrate()
    with pytest.raises(StoreUnavailable):
        sqlite_store.ping()

    # Then they fail at once, with a 503 a person can act on, and no password in it
    assert elapsed < 5
    message = str(down.value)
    assert down.value.status == 503
    assert "cannot be reached" in message
    assert "127.0.0.1" in message
    assert "database_url" in message
    assert "s3cret" not in message
    assert "store.db" in str(no_file.value)
    store.close()
    sqlite_store.close()


def test_postgres_stopped_then_back(private_postgres: PostgresServer) -> None:
    # Given a store on a PostgreSQL that is up
    store = RequestStore(private_postgres.create_database(), connect_timeout=2)
    store.migrate()
    request, _ = store.create(ENV, ["numpy"], "before the outage", "alice")

    # When the database stops
    private_postgres.stop()

    # Then every call says the database is unavailable (503), quickly
    began = time.monotonic()
    calls = [
        store.ping,
        lambda: store.get(request.id),
        lambda: store.create(ENV, ["scipy"], "during", "bob"),
        lambda: store.ingest([launch("alice")]),
        store.usage,
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            call()
    assert time.monotonic() - began < 10

    # And when it is back, the same store recovers by itself
    private_postgres.start()
    store.ping()
    assert store.get(request.id).reason == "before the outage"
    supported = store.support(request.id, "bob", "after")
    assert [s.user for s in supported.supporters] == ["bob"]
    assert store.ingest([launch("alice")]) == 1
    store.close()


def test_a_new_database_without_tables_is_reported_as_such(store_url: str) -> None:
    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    with RequestStore(store_url) as store:
        with pytest.raises(StoreError, match="no envshare tables") as missing:
            store.list()
        assert not isinstance(missing.value, StoreUnavailable)
        store.migrate()
        assert store.list() == []
