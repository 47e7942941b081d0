"""Requests for additions to shared environments: validation, the store, and the spec patch.

Free of tornado: the handlers and the CLI call it (in a thread, as the store blocks).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from rattler import MatchSpec

from .config import current_user
from .service import EnvService, ServiceError
from .store import InstallRequest, RequestStore
from .store.spool_ingest import ingest_spool

# One set of threads per process for request-store calls (made when first used).
STORE_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="envshare-store")
MAX_SPECS = 50
MAX_SPEC_CHARS = 200
MAX_REASON_CHARS = 4000
REQUEST_ENV_MAX_AGE = 1.0  # seconds: how old a view of the environments a new request is checked against
ACTIONS = {"support", "withdraw", "approve", "reject", "done"}
ADMIN_ACTIONS = {"approve": "approved", "reject": "rejected", "done": "done"}


class ValidationError(ServiceError):
    """The request body is not acceptable; ``errors`` maps fields to what is wrong with them."""

    status = 400

    def __init__(self, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


class Forbidden(ServiceError):
    """The caller may not do this (an admin action by a non-admin)."""

    status = 403


class Conflict(ServiceError):
    """The request is in a state that does not allow this."""

    status = 409


def validate_specs(raw: Any) -> list[str]:
    """Specs as conda MatchSpecs (py-rattler decides), with a message per bad one."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValidationError(
            'specs: give one or more package specs, e.g. ["polars >=1.0"]', {"specs": "required"}
        )
    if len(raw) > MAX_SPECS:
        raise ValidationError(f"specs: at most {MAX_SPECS} per request", {"specs": "too many"})
    specs: list[str] = []
    errors: dict[str, str] = {}
    for index, item in enumerate(raw):
        text = item.strip() if isinstance(item, str) else ""
        if not text:
            errors[f"specs[{index}]"] = "empty or not a string"
            continue
        if len(text) > MAX_SPEC_CHARS:
            errors[f"specs[{index}]"] = f"longer than {MAX_SPEC_CHARS} characters"
            continue
        try:
            MatchSpec(text)
        except Exception as err:  # py-rattler raises its own exception types
            errors[f"specs[{index}]"] = f"{text!r} is not a valid conda package spec ({_short(err)})"
            continue
        specs.append(text)
    if errors:
        raise ValidationError("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
    return specs


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


class RequestService:
    """What users and admins can do with requests."""

    def __init__(self, store: RequestStore, envs: EnvService, spool_dir: str | None = None) -> None:
        self.store = store
        self.envs = envs
        self.spool_dir = spool_dir
        # The threads the server runs this service's calls in: not the event loop's default ones, so
        # that a call waiting for the database never holds up a listing of environments.
        self.executor = STORE_EXECUTOR
        # SQLite has one writer at a time. This server's writers queue on a lock, each woken as soon as
        # the one before is done, rather than in SQLite's busy handler, which sleeps and retries with
        # growing pauses (other processes on the same file still wait there).
        self._writing: AbstractContextManager[Any] = (
            threading.Lock() if store.url.get_backend_name() == "sqlite" else nullcontext()
        )

    def usage(self) -> dict[str, Any]:
        """``GET usage``: launches per kernel (with its kernelspec name), intercepted attempts, and
        every environment by last use, those never launched first (what to retire at a migration)."""
        launches, attempts = self.store.usage()
        by_env = {row.env: row for row in self.store.env_usage()}
        known = self.envs.envs(include_hidden=True)
        kernel_names = {(env.name, k.raw_name): k.name for env in known for k in env.kernels}
        names = [env.name for env in known] + sorted(set(by_env) - {env.name for env in known})
        present = {env.name for env in known}
        envs = []
        for name in names:
            row = by_env.get(name)
            envs.append(
                {
                    "env": name,
                    "present": name in present,  # False: launched once, gone from the installation
                    "launches": row.launches if row else 0,
                    "users": row.users if row else 0,
                    "last_used": row.last_used.isoformat() if row and row.last_used else None,
                }
            )
        envs.sort(key=lambda e: (e["last_used"] is not None, e["last_used"] or "", e["env"]))
        return {
            "launches": [
                {**row.as_json(), "kernel_name": kernel_names.get((row.env, row.kernel))} for row in launches
            ],
            "attempts": [row.as_json() for row in attempts],
            "envs": envs,
        }

    def ingest(self) -> int:
        """Take this user's new spool events (launches, attempts, request intents) into the store."""
        if self.spool_dir is None:
            return 0
        # The spool is writable by its user: events count as this server's user, whatever they say.
        with self._writing:
            return ingest_spool(self.store, self.spool_dir, user=current_user())

    def create(self, user: str, body: Mapping[str, Any], admin: bool = False) -> tuple[InstallRequest, bool]:
        """File a request (or support the open one for the same specs); True when new."""
        env = body.get("env")
        if not isinstance(env, str) or not env.strip():
            raise ValidationError("env: name the shared environment", {"env": "required"})
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason: say what you need it for", {"reason": "required"})
        if len(reason) > MAX_REASON_CHARS:
            raise ValidationError(f"reason: at most {MAX_REASON_CHARS} characters", {"reason": "too long"})
        specs = validate_specs(body.get("specs"))
        # EnvNotFound -> 404. A view up to a second old will do: an environment removed within the
        # last second can still be asked for (an admin rejects the request), and a burst of requests
        # does not check the disk once per request.
        record = self.envs.env(env.strip(), include_hidden=admin, max_age=REQUEST_ENV_MAX_AGE)
        with self._writing:
            return self.store.create(record.name, specs, reason, user)

    def act(self, request_id: int, user: str, admin: bool, body: Mapping[str, Any]) -> InstallRequest:
        """support | withdraw (requester) | approve | reject | done (admins), with a comment."""
        action = body.get("action")
        comment = body.get("comment")
        if comment is None:
            comment = ""
        if not isinstance(action, str) or action not in ACTIONS:
            raise ValidationError(f"action: one of {', '.join(sorted(ACTIONS))}", {"action": "invalid"})
        if not isinstance(comment, str) or len(comment) > MAX_REASON_CHARS:
            raise ValidationError(
                f"comment: text of at most {MAX_REASON_CHARS} characters", {"comment": "invalid"}
            )
        if action not in ("support", "withdraw") and not admin:
            raise Forbidden(f"Only admins can {action} requests.")
        with self._writing:
            if action == "support":
                return self.store.support(request_id, user, comment)
            if action == "withdraw":
                return self.store.withdraw(request_id, user)
            return self.store.transition(request_id, user, ADMIN_ACTIONS[action], comment)

    def patch(self, request_id: int) -> dict[str, Any]:
        """The change to the environment's spec file that adds the requested specs."""
        request = self.store.get(request_id)
        if request.status in ("rejected", "withdrawn"):
            raise Conflict(f"Request {request_id} is {request.status}: there is nothing to apply.")
        env = self.envs.env(request.env, include_hidden=True)
        from .provenance import read_provenance

        spec = read_provenance(env, platform=self.envs.platform).spec
        if spec is None or spec.text is None:
            raise Conflict(
                f"The spec of {env.name} is not known (no readable spec in its sidecar or catalog): "
                "stamp it with `jupyter envshare stamp ENV --spec FILE`."
            )
        return {
            "request": request.id,
            "env": env.name,
            "spec_path": spec.path,
            "diff": spec_patch(spec.text, request.specs, Path(spec.path).name),
        }


_DEP_LINE = re.compile(r"^(?P<indent>\s*)-\s+(?P<spec>[^#\n]*?)\s*(#.*)?$")


def _spec_name(spec: str) -> str:
    match = re.match(r"\s*(?:[^:\s]+::)?([A-Za-z0-9_.\-]+)", spec)
    return match.group(1).lower() if match else spec.strip().lower()


def spec_patch(text: str, specs: tuple[str, ...] | list[str], filename: str = "environment.yml") -> str:
    """A unified diff adding (or re-pinning) conda ``specs`` in an environment.yml's dependencies.

    Edits lines in place, so the admin's comments and layout survive.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new = list(lines)
    start = next((i for i, line in enumerate(new) if line.rstrip() == "dependencies:"), None)
    if start is None:
        new += ["dependencies:\n"] + [f"  - {s}\n" for s in specs]
    else:
        end = start + 1
        first_indent: str | None = None
        existing: dict[str, int] = {}
        while end < len(new):
            line = new[end]
            if line.strip() and not line.startswith((" ", "\t", "-")):
                break  # the next top-level key
            if line.strip().startswith("- pip:"):
                break  # pip's sub-list: conda specs go before it
            match = _DEP_LINE.match(line)
            if match:
                if first_indent is None:
                    first_indent = match.group("indent")
                if match.group("indent") == first_indent:
                    existing.setdefault(_spec_name(match.group("spec")), end)
            end += 1
        indent = first_indent if first_indent is not None else "  "
        insert_at = end
        while insert_at > start + 1 and not new[insert_at - 1].strip():
            insert_at -= 1
        added: list[str] = []
        for spec in specs:
            at = existing.get(_spec_name(spec))
            if at is not None:
                new[at] = f"{_DEP_LINE.match(new[at]).group('indent')}- {spec}\n"  # type: ignore[union-attr]
            else:
                added.append(f"{indent}- {spec}\n")
        new[insert_at:insert_at] = added
    return "".join(difflib.unified_diff(lines, new, fromfile=f"a/{filename}", tofile=f"b/{filename}"))
