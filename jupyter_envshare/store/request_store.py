"""RequestStore: install requests, spool events, usage and fingerprints in one SQL database.

Every method is one short transaction and blocks: the server calls them in a thread, never on its
event loop. Nothing here imports tornado or jupyter_server.
"""

from __future__ import annotations

import builtins
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    distinct,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .engine import READ_ONLY, Conflict, database_errors, describe, make_engine, parse_url, unavailable
from .errors import InvalidTransition, NotAllowed, RequestNotFound, StoreError
from .events import INSTALL_ATTEMPT, LAUNCH, REQUEST_INTENT, SpoolEvent, parse_event
from .migrate import upgrade
from .models import (
    OPEN_ONLY,
    AttemptPackageRow,
    Base,
    EventRow,
    FingerprintRow,
    HistoryRow,
    RequestPackageRow,
    RequestRow,
    SupporterRow,
)
from .records import (
    ADMIN_TRANSITIONS,
    STATUSES,
    AttemptRow,
    EnvUsageRow,
    Fingerprint,
    InstallRequest,
    RequestChange,
    Supporter,
    UsageRow,
)
from .specs import (
    MAX_COMMENT_LENGTH,
    MAX_FINGERPRINT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    check_specs,
    check_text,
    package_names,
    spec_key,
)

log = logging.getLogger(__name__)

INGEST_BATCH = 200  # events per transaction: short transactions, few commits
_MAX_ID = 2**31 - 1  # PostgreSQL integer
_FOLD_RETRIES = 5
_CONFLICT_RETRIES = 4

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _name(value: object, what: str) -> str:
    return check_text(value, what, limit=MAX_NAME_LENGTH)


class RequestStore:
    """Install requests, supporters and history; spool events and usage; environment fingerprints."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, busy_timeout: float = 10.0) -> None:
        """Prepare a store for ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://...``); no I/O here.

        ``connect_timeout`` bounds how long an unreachable PostgreSQL makes a call wait;
        ``busy_timeout`` how long a SQLite writer waits for another one.
        """
        self.url = parse_url(url)
        self.where = describe(self.url)
        self._backend = self.url.get_backend_name()
        self._engine = make_engine(self.url, connect_timeout=connect_timeout, busy_timeout=busy_timeout)
        self._reader = self._engine.execution_options(**{READ_ONLY: True})
        # INSERT ... ON CONFLICT DO NOTHING RETURNING id: None when the row is there already. An open
        # request's conflict is the partial unique index on (env, spec_key) of open requests.
        self._new_request = (
            self._insert(_REQUESTS)
            .on_conflict_do_nothing(
                index_elements=[_REQUESTS.c.env, _REQUESTS.c.spec_key], index_where=text(OPEN_ONLY)
            )
            .returning(_REQUESTS.c.id)
        )
        self._new_supporter = (
            self._insert(_SUPPORTERS)
            .on_conflict_do_nothing(index_elements=[_SUPPORTERS.c.request_id, _SUPPORTERS.c.username])
            .returning(_SUPPORTERS.c.id)
        )

    def __repr__(self) -> str:
        return f"RequestStore({self.where!r})"

    def __enter__(self) -> RequestStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lifecycle -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest version; safe when several servers start at once."""
        with database_errors(self.where):
            try:
                upgrade(self._engine)
            except OSError as err:  # the SQLite directory or lock file cannot be made, or the lock wait
                raise unavailable(self.where, str(err)) from err

    def ping(self) -> None:
        """Return if the database answers; StoreUnavailable saying why not otherwise."""
        with self._transaction(write=False) as session:
            session.execute(select(1))

    def close(self) -> None:
        """Close every pooled connection (the store can still be used: it reconnects)."""
        self._engine.dispose()

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[Session]:
        engine = self._engine if write else self._reader
        with database_errors(self.where), Session(engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """``work`` in one transaction, run again if it collided with a concurrent one (PostgreSQL)."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with self._transaction(write=write) as session:
                    return work(session)
            except Conflict:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # jittered: collide less
        raise AssertionError("unreachable")

    # -- requests --------------------------------------------------------------------------------

    def create(self, env: str, specs: Sequence[str], reason: str, user: str) -> tuple[InstallRequest, bool]:
        """Open a request, or, when an open one asks for the same specs in ``env``, support that one.

        Returns the request and whether it was created (False: folded into an existing request).
        """
        env = _name(env, "environment name")
        wanted = check_specs(specs)
        reason = check_text(reason, "reason", limit=MAX_REASON_LENGTH, required=False)
        user = _name(user, "user name")

        def work(session: Session) -> tuple[InstallRequest, bool]:
            request_id, created = self._open_or_support(session, env, wanted, reason, user, _now())
            return self._get(session, request_id), created

        return self._run(work)

    def get(self, request_id: int) -> InstallRequest:
        """One request; RequestNotFound if there is none with this id."""
        return self._run(lambda session: self._get(session, request_id), write=False)

    def list(
        self,
        *,
        env: str | None = None,
        status: str | None = None,
        user: str | None = None,
        limit: int = 500,
    ) -> builtins.list[InstallRequest]:
        """Requests, open ones first by demand (supporters + attempts), then newest first.

        ``user``: only requests this user made or supports.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}: one of {', '.join(STATUSES)}.")
        if limit < 1:
            raise ValueError("The limit must be at least 1.")
        conditions: builtins.list[ColumnElement[bool]] = []
        if env is not None:
            conditions.append(RequestRow.env == env)
        if status is not None:
            conditions.append(RequestRow.status == status)
        if user is not None:
            supports = exists().where(SupporterRow.request_id == RequestRow.id, SupporterRow.user == user)
            conditions.append(or_(RequestRow.requester == user, supports))
        supporters = (
            select(func.count(SupporterRow.id))
            .where(SupporterRow.request_id == RequestRow.id)
            .correlate(RequestRow)
            .scalar_subquery()
        )
        attempts = _attempts_of_request()
        is_open = RequestRow.status == "open"
        query = (
            select(RequestRow, attempts)
            .where(*conditions)
            .order_by(
                case((is_open, 0), else_=1),
                case((is_open, supporters + attempts), else_=0).desc(),
                RequestRow.created_at.desc(),
                RequestRow.id.desc(),
            )
            .limit(limit)
        )
        return self._run(
            lambda session: [_record(row, count) for row, count in session.execute(query).all()], write=False
        )

    def support(self, request_id: int, user: str, reason: str = "") -> InstallRequest:
        """Add ``user`` as a supporter of an open request (idempotent; the requester is a no-op)."""
        user = _name(user, "user name")
        reason = check_text(reason, "reason", limit=MAX_REASON_LENGTH, required=False)

        def work(session: Session) -> InstallRequest:
            found = self._lock(session, request_id)
            if found.status != "open":
                raise InvalidTransition(
                    f"Request #{request_id} is {found.status}; only open requests can be supported."
                )
            self._add_supporter(session, found.id, found.requester, user, reason, _now())
            return self._get(session, request_id)

        return self._run(work)

    def withdraw(self, request_id: int, user: str) -> InstallRequest:
        """Withdraw an open request; only its requester may."""
        user = _name(user, "user name")

        def work(session: Session) -> InstallRequest:
            row = self._lock(session, request_id)
            if row.requester != user:
                raise NotAllowed(f"Only {row.requester}, who made request #{request_id}, can withdraw it.")
            if row.status != "open":
                raise InvalidTransition(
                    f"Request #{request_id} is {row.status}; only open requests can be withdrawn."
                )
            self._change(row, user, "withdrawn", "", admin=False)
            session.flush()
            return self._get(session, request_id)

        return self._run(work)

    def transition(self, request_id: int, actor: str, status: str, comment: str = "") -> InstallRequest:
        """An admin's decision: open -> approved | rejected, approved -> done | rejected.

        The caller checks that ``actor`` is an admin. The comment becomes the request's admin comment.
        """
        if status not in STATUSES:
            raise ValueError(f"Unknown status {status!r}: one of {', '.join(STATUSES)}.")
        actor = _name(actor, "actor name")
        comment = check_text(comment, "comment", limit=MAX_COMMENT_LENGTH, required=False)

        def work(session: Session) -> InstallRequest:
            row = self._lock(session, request_id)
            allowed = ADMIN_TRANSITIONS.get(row.status, frozenset())
            if status not in allowed:
                hint = f" (it can become {' or '.join(sorted(allowed))})" if allowed else ""
                raise InvalidTransition(
                    f"Request #{request_id} is {row.status}; it cannot become {status}{hint}."
                )
            self._change(row, actor, status, comment, admin=True)
            session.flush()
            return self._get(session, request_id)

        return self._run(work)

    # -- events and usage ------------------------------------------------------------------------

    def ingest(self, events: Iterable[Mapping[str, Any]], *, user: str | None = None) -> int:
        """Store spool events, each once (by its id); return how many were new.

        A request intent becomes a request, or support of the open request for the same specs, by the
        event's user. ``user``, when given, is who every event is attributed to whatever it says (the
        owner of the spool). Malformed events are skipped.
        """
        if user is not None:
            user = _name(user, "user name")
        now = _now()
        new = 0
        batch: builtins.list[SpoolEvent] = []
        for raw in events:
            event = parse_event(raw, now, user=user) if isinstance(raw, Mapping) else None
            if event is not None:
                batch.append(event)
            if len(batch) >= INGEST_BATCH:
                new += self._ingest_batch(batch)
                batch = []
        if batch:
            new += self._ingest_batch(batch)
        return new

    def usage(
        self, since: datetime | None = None
    ) -> tuple[builtins.list[UsageRow], builtins.list[AttemptRow]]:
        """Launches per env and kernel (by env, kernel) and intercepted attempts per env and package
        (most attempted first), counting events at or after ``since`` (all when None)."""
        launches = func.count(EventRow.id)
        launch_query = (
            select(
                EventRow.env,
                EventRow.kernel,
                launches,
                func.count(distinct(EventRow.user)),
                func.max(EventRow.at),
            )
            .where(EventRow.kind == LAUNCH)
            .group_by(EventRow.env, EventRow.kernel)
            .order_by(EventRow.env, EventRow.kernel)
        )
        attempts = func.count(distinct(AttemptPackageRow.event_pk)).label("attempts")
        attempt_query = (
            select(
                AttemptPackageRow.env,
                AttemptPackageRow.package,
                attempts,
                func.count(distinct(AttemptPackageRow.user)),
                func.max(AttemptPackageRow.at),
            )
            .group_by(AttemptPackageRow.env, AttemptPackageRow.package)
            .order_by(attempts.desc(), AttemptPackageRow.env, AttemptPackageRow.package)
        )
        if since is not None:
            launch_query = launch_query.where(EventRow.at >= since)
            attempt_query = attempt_query.where(AttemptPackageRow.at >= since)

        def work(session: Session) -> tuple[builtins.list[UsageRow], builtins.list[AttemptRow]]:
            usage = [
                UsageRow(env=env, kernel=kernel or "", launches=n, users=users, last_used=last)
                for env, kernel, n, users, last in session.execute(launch_query).all()
            ]
            attempted = [
                AttemptRow(env=env, package=package, attempts=n, users=users, last_at=last)
                for env, package, n, users, last in session.execute(attempt_query).all()
            ]
            return usage, attempted

        return self._run(work, write=False)

    def env_usage(self, since: datetime | None = None) -> builtins.list[EnvUsageRow]:
        """Launches per environment (all kernels together): distinct users and last use, by env."""
        query = (
            select(
                EventRow.env,
                func.count(EventRow.id),
                func.count(distinct(EventRow.user)),
                func.max(EventRow.at),
            )
            .where(EventRow.kind == LAUNCH)
            .group_by(EventRow.env)
            .order_by(EventRow.env)
        )
        if since is not None:
            query = query.where(EventRow.at >= since)
        return self._run(
            lambda session: [
                EnvUsageRow(env=env, launches=n, users=users, last_used=last)
                for env, n, users, last in session.execute(query).all()
            ],
            write=False,
        )

    # -- fingerprints ----------------------------------------------------------------------------

    def record_fingerprint(self, env: str, host: str, fingerprint: str, package_count: int) -> None:
        """Record what ``host`` sees of ``env`` now (one row per env and host, replaced each time)."""
        env = _name(env, "environment name")
        host = _name(host, "host name")
        fingerprint = check_text(fingerprint, "fingerprint", limit=MAX_FINGERPRINT_LENGTH)
        if isinstance(package_count, bool) or not isinstance(package_count, int) or package_count < 0:
            raise ValueError(f"The package count must be a whole number >= 0, not {package_count!r}.")
        values = {
            "env": env,
            "host": host,
            "fingerprint": fingerprint,
            "package_count": package_count,
            "seen_at": _now(),
        }
        statement = self._insert(FingerprintRow).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[FingerprintRow.env, FingerprintRow.host],
            set_={key: statement.excluded[key] for key in ("fingerprint", "package_count", "seen_at")},
        )
        self._run(lambda session: session.execute(statement))

    def fingerprints(self, env: str) -> builtins.list[Fingerprint]:
        """What each host last reported for ``env``, by host name."""
        query = select(FingerprintRow).where(FingerprintRow.env == env).order_by(FingerprintRow.host)

        def work(session: Session) -> builtins.list[Fingerprint]:
            return [
                Fingerprint(
                    env=row.env,
                    host=row.host,
                    fingerprint=row.fingerprint,
                    package_count=row.package_count,
                    seen_at=row.seen_at,
                )
                for row in session.scalars(query)
            ]

        return self._run(work, write=False)

    # -- internals -------------------------------------------------------------------------------

    def _insert(self, model: type[Any] | Table) -> postgresql.Insert | sqlite.Insert:
        # INSERT ... ON CONFLICT, which both backends speak (with the same Python API).
        return postgresql.insert(model) if self._backend == "postgresql" else sqlite.insert(model)

    def _get(self, session: Session, request_id: int) -> InstallRequest:
        # Plain SQL rows, no ORM objects: this runs for every request filed or changed.
        if not _valid_id(request_id):
            raise RequestNotFound(f"There is no request #{request_id}.")
        connection = session.connection()
        found = connection.execute(_REQUEST_BY_ID, {"request_id": request_id}).first()
        if found is None:
            raise RequestNotFound(f"There is no request #{request_id}.")
        supporters = connection.execute(_SUPPORTERS_OF, {"request_id": request_id}).all()
        history = connection.execute(_HISTORY_OF, {"request_id": request_id}).all()
        return _record(found, found.attempts, supporters, history)

    def _lock(self, session: Session, request_id: int) -> RequestRow:
        # Every change to a request locks its row first (PostgreSQL: FOR NO KEY UPDATE, which still lets
        # others insert rows that refer to it; SQLite: BEGIN IMMEDIATE has serialized writers already).
        # A shared lock would not do: two supporters holding it would deadlock on updated_at.
        row = None
        if _valid_id(request_id):
            query = select(RequestRow).where(RequestRow.id == request_id).with_for_update(key_share=True)
            row = session.scalars(query).first()
        if row is None:
            raise RequestNotFound(f"There is no request #{request_id}.")
        return row

    def _change(self, row: RequestRow, actor: str, status: str, comment: str, *, admin: bool) -> None:
        now = _now()
        row.history.append(
            HistoryRow(actor=actor, from_status=row.status, to_status=status, comment=comment, at=now)
        )
        row.status = status
        row.updated_at = now
        if admin and comment:
            # the latest thing an admin said about it: a decision without a comment keeps the earlier one
            row.admin_comment = comment

    def _open_or_support(
        self, session: Session, env: str, specs: tuple[str, ...], reason: str, user: str, now: datetime
    ) -> tuple[int, bool]:
        connection = session.connection()
        key = spec_key(specs)
        for _ in range(_FOLD_RETRIES):
            existing = connection.execute(_OPEN_REQUEST, {"env": env, "spec_key": key}).first()
            if existing is not None:
                self._add_supporter(session, existing.id, existing.requester, user, reason, now)
                return int(existing.id), False
            # The partial unique index on open requests is the arbiter: when another server opened
            # the same request between our look and this insert, nothing is inserted and we look again.
            request_id = connection.execute(
                self._new_request,
                {
                    "env": env,
                    "specs": list(specs),
                    "spec_key": key,
                    "reason": reason,
                    "requester": user,
                    "status": "open",
                    "admin_comment": "",
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one_or_none()
            if request_id is None:
                continue
            names = package_names(specs)
            if names:  # a spec may name no package (`./local`, `*`): nothing to match attempts on
                connection.execute(_NEW_PACKAGE, [{"request_id": request_id, "package": n} for n in names])
            connection.execute(
                _NEW_CHANGE,
                {
                    "request_id": request_id,
                    "actor": user,
                    "from_status": None,
                    "to_status": "open",
                    "comment": "",
                    "at": now,
                },
            )
            return int(request_id), True
        raise StoreError("The request kept changing while it was being filed; try again.")

    def _add_supporter(
        self, session: Session, request_id: int, requester: str, user: str, reason: str, now: datetime
    ) -> None:
        if user == requester:
            return
        connection = session.connection()
        added = connection.execute(
            self._new_supporter,
            {"request_id": request_id, "username": user, "reason": reason, "created_at": now},
        ).scalar_one_or_none()
        if added is not None:
            connection.execute(_TOUCH_REQUEST, {"request_id": request_id, "touched_at": now})

    def _ingest_batch(self, batch: builtins.list[SpoolEvent]) -> int:
        return self._run(lambda session: self._store_events(session, batch))

    def _store_events(self, session: Session, batch: builtins.list[SpoolEvent]) -> int:
        new = 0
        for event in batch:
            statement = (
                self._insert(EventRow)
                .values(
                    event_id=event.event_id,
                    kind=event.kind,
                    env=event.env,
                    kernel=event.kernel,
                    user=event.user,
                    host=event.host,
                    at=event.at,
                    data=event.data,
                )
                .on_conflict_do_nothing(index_elements=[EventRow.event_id])
                .returning(EventRow.id)
            )
            event_pk = session.execute(statement).scalar_one_or_none()
            if event_pk is None:
                continue  # ingested before
            new += 1
            if event.kind == INSTALL_ATTEMPT and event.packages:
                session.execute(
                    insert(AttemptPackageRow),
                    [
                        {
                            "event_pk": event_pk,
                            "package": name,
                            "env": event.env,
                            "user": event.user,
                            "at": event.at,
                        }
                        for name in event.packages
                    ],
                )
            elif event.kind == REQUEST_INTENT:
                self._ingest_intent(session, event)
        return new

    def _ingest_intent(self, session: Session, event: SpoolEvent) -> None:
        try:
            specs = check_specs(event.specs)
            reason = check_text(event.reason, "reason", limit=MAX_REASON_LENGTH, required=False)
        except ValueError as err:
            log.warning("[envshare] request intent %s by %s not filed: %s", event.event_id, event.user, err)
            return
        self._open_or_support(session, event.env, specs, reason, event.user, event.at)


def _valid_id(request_id: object) -> bool:
    return isinstance(request_id, int) and not isinstance(request_id, bool) and 0 < request_id <= _MAX_ID


def _attempts_of_request() -> Any:
    # Distinct intercepted attempts in the request's env naming any of its packages.
    return (
        select(func.count(distinct(AttemptPackageRow.event_pk)))
        .select_from(RequestPackageRow)
        .join(AttemptPackageRow, AttemptPackageRow.package == RequestPackageRow.package)
        .where(RequestPackageRow.request_id == RequestRow.id, AttemptPackageRow.env == RequestRow.env)
        .correlate(RequestRow)
        .scalar_subquery()
    )


def _record(
    row: Any,
    attempts: int | None,
    supporters: Iterable[Any] | None = None,
    history: Iterable[Any] | None = None,
) -> InstallRequest:
    """The record of a request row (an ORM object, or a plain row with its supporter and history
    rows): anything with the columns' names as attributes."""
    return InstallRequest(
        id=row.id,
        env=row.env,
        specs=tuple(row.specs),
        reason=row.reason,
        requester=row.requester,
        status=row.status,
        admin_comment=row.admin_comment,
        created_at=row.created_at,
        updated_at=row.updated_at,
        supporters=tuple(
            Supporter(user=s.user, reason=s.reason, created_at=s.created_at)
            for s in (row.supporters if supporters is None else supporters)
        ),
        history=tuple(
            RequestChange(
                actor=h.actor, from_status=h.from_status, to_status=h.to_status, comment=h.comment, at=h.at
            )
            for h in (row.history if history is None else history)
        ),
        attempts=attempts or 0,
    )


# -- statements of the hot paths, in plain SQL expressions (compiled once, cached by SQLAlchemy) ----

_REQUESTS = Base.metadata.tables[RequestRow.__tablename__]
_PACKAGES = Base.metadata.tables[RequestPackageRow.__tablename__]
_SUPPORTERS = Base.metadata.tables[SupporterRow.__tablename__]
_HISTORY = Base.metadata.tables[HistoryRow.__tablename__]
_ATTEMPTS = Base.metadata.tables[AttemptPackageRow.__tablename__]

_ATTEMPTS_OF_REQUEST = (
    select(func.count(distinct(_ATTEMPTS.c.event_pk)))
    .select_from(_PACKAGES)
    .join(_ATTEMPTS, _ATTEMPTS.c.package == _PACKAGES.c.package)
    .where(_PACKAGES.c.request_id == _REQUESTS.c.id, _ATTEMPTS.c.env == _REQUESTS.c.env)
    .correlate(_REQUESTS)
    .scalar_subquery()
)
_REQUEST_BY_ID = select(*_REQUESTS.c, _ATTEMPTS_OF_REQUEST.label("attempts")).where(
    _REQUESTS.c.id == bindparam("request_id")
)
_SUPPORTERS_OF = (
    select(_SUPPORTERS.c.username.label("user"), _SUPPORTERS.c.reason, _SUPPORTERS.c.created_at)
    .where(_SUPPORTERS.c.request_id == bindparam("request_id"))
    .order_by(_SUPPORTERS.c.created_at, _SUPPORTERS.c.id)
)
_HISTORY_OF = (
    select(_HISTORY.c.actor, _HISTORY.c.from_status, _HISTORY.c.to_status, _HISTORY.c.comment, _HISTORY.c.at)
    .where(_HISTORY.c.request_id == bindparam("request_id"))
    .order_by(_HISTORY.c.at, _HISTORY.c.id)
)
_NEW_PACKAGE = insert(_PACKAGES)
_NEW_CHANGE = insert(_HISTORY)
_TOUCH_REQUEST = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("request_id"))
    .values(updated_at=bindparam("touched_at"))
)
# The open request for the same specs, locked (PostgreSQL) so that supporting it cannot race its closing.
_OPEN_REQUEST = (
    select(_REQUESTS.c.id, _REQUESTS.c.requester)
    .where(
        _REQUESTS.c.env == bindparam("env"),
        _REQUESTS.c.spec_key == bindparam("spec_key"),
        _REQUESTS.c.status == "open",
    )
    .with_for_update(key_share=True)
)

__all__ = ["RequestStore"]
