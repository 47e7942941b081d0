"""The REST API under ``{base_url}envshare/api/``: thin handlers over the services.

Every verb is authenticated and authorized against the ``envshare`` auth resource; domain errors
become JSON ``{code, message}`` a person can act on, in one place (``EnvShareHandler``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import re
import weakref
from concurrent.futures import Executor
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import IdentityProvider, LegacyIdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .coalesce import SharedListing
from .config import EnvShare, current_user, is_admin
from .install_requests import RequestService, ValidationError
from .service import EnvNotFound, EnvService, ServiceError, jsonable
from .store import StoreError, StoreUnavailable

AUTH_RESOURCE = "envshare"
MAX_BODY = 64 * 1024
_YES = frozenset({"1", "true", "yes"})
_NO = frozenset({"0", "false", "no"})
_ID_DIGITS = re.compile(r"[0-9]{1,18}")
# jupyter_server's own identity providers: a shared token or password, no named users.
JUPYTER_SERVER_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


def safe_json(data: Any) -> str:
    """JSON with <, > and & escaped: user text (reasons, specs) can never be read as markup."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class EnvShareHandler(APIHandler):
    """Base of every envshare handler: auth resource, JSON errors, service access."""

    auth_resource = AUTH_RESOURCE

    def initialize(
        self, service: EnvService, envshare: EnvShare, requests: RequestService | None = None
    ) -> None:
        """Receive the services and settings from the route table."""
        self.service = service
        self.envshare = envshare
        self.requests = requests

    @property
    def user_name(self) -> str:
        """The caller's name, as the identity provider knows it.

        jupyter_server's own provider only knows "whoever holds this server's token" and makes up
        an anonymous name per browser; that person is the one the server runs as, so requests are
        filed under the server's user. A hub's (or any other) provider names its users itself.
        """
        if type(self.identity_provider) in JUPYTER_SERVER_PROVIDERS:
            return current_user()
        user = self.current_user
        return str(getattr(user, "username", None) or getattr(user, "name", None) or user)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object (413 when too large, 400 when not an object)."""
        body = self.request.body or b""
        if len(body) > MAX_BODY:
            raise web.HTTPError(413, f"The request body is larger than {MAX_BODY // 1024} KiB.")
        try:
            data = json.loads(body or b"{}")
        except ValueError as err:
            raise web.HTTPError(400, f"The request body is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        return data

    def flag(self, name: str) -> bool:
        """A yes/no query argument (absent: no); 400 for a value that is neither, not a silent no."""
        value = self.get_argument(name, None)
        if value is None or value in _NO:
            return False
        if value in _YES:
            return True
        raise web.HTTPError(400, f"{name}={value!r}: use {name}=1 (or true, yes) or {name}=0 (false, no).")

    def request_id(self, raw: str) -> int:
        """The request id in the URL (404 for one that cannot be an id, as for an unknown id)."""
        if not _ID_DIGITS.fullmatch(raw):
            raise web.HTTPError(404, f"There is no request {raw!r}: request ids are whole numbers.")
        return int(raw)

    def request_service(self) -> RequestService:
        """The requests service (503 when the store was never configured or failed to start)."""
        if self.requests is None:
            raise web.HTTPError(
                503, "The request service is unavailable: its database did not start (see the server log)."
            )
        return self.requests

    @property
    def admin(self) -> bool:
        """Whether the caller administers shared environments (sees denied and broken ones too)."""
        return is_admin(self.current_user, self.envshare, self.user_name)

    async def call(self, func: Any, *args: Any) -> Any:
        """Run blocking service work (filesystem, hashing) off the event loop, mapping its errors."""
        return await self._in_thread(None, func, *args)

    async def call_store(self, func: Any, *args: Any) -> Any:
        """Like ``call``, for work on the request store: in the store's threads, so that calls waiting
        for the database never hold up the threads that list environments."""
        return await self._in_thread(self.request_service().executor, func, *args)

    async def _in_thread(self, executor: Executor | None, func: Any, *args: Any) -> Any:
        try:
            # as asyncio.to_thread does, in a copy of this context
            work = functools.partial(contextvars.copy_context().run, func, *args)
            return await asyncio.get_running_loop().run_in_executor(executor, work)
        except EnvNotFound as err:
            raise web.HTTPError(404, str(err)) from err
        except ValidationError as err:
            self.validation_errors = err.errors
            raise web.HTTPError(400, str(err)) from err
        except ServiceError as err:
            raise web.HTTPError(err.status, str(err)) from err
        except StoreUnavailable as err:
            raise web.HTTPError(
                503,
                # the store's message says what is wrong and that kernels are not affected
                f"The request service is unavailable right now: {err}",
            ) from err
        except StoreError as err:
            raise web.HTTPError(getattr(err, "status", 500), str(err)) from err
        except ValueError as err:  # the store's bounds on text
            raise web.HTTPError(400, str(err)) from err

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as ``{code, message}`` (plus jupyter_server's ``reason``)."""
        self.set_header("Content-Type", "application/json")
        if status_code == 405:  # RFC 9110: a 405 says which methods the resource does support
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], web.HTTPError) and exc_info[1].log_message:
            message = exc_info[1].log_message
        elif status_code >= 500:
            message = "Internal error in jupyter_envshare; the server log has the details."
        reply: dict[str, Any] = {"code": status_code, "message": message, "reason": self._reason}
        errors = getattr(self, "validation_errors", None)
        if errors:
            reply["errors"] = errors
        self.finish(safe_json(reply))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler implements (OPTIONS is jupyter_server's CORS preflight)."""
        return [
            method
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
            if getattr(cls, method.lower()) is not getattr(web.RequestHandler, method.lower())
        ]

    def reply(self, data: Any) -> None:
        """Send ``data`` as JSON."""
        self.set_header("Content-Type", "application/json")
        self.finish(safe_json(data))


_LISTINGS: weakref.WeakKeyDictionary[EnvService, dict[bool, SharedListing]] = weakref.WeakKeyDictionary()


class EnvsHandler(EnvShareHandler):
    """``GET envs``: every environment this user may see, summarized."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List environment summaries."""
        admin = self.admin
        listing = _LISTINGS.setdefault(self.service, {}).setdefault(admin, SharedListing())
        body, etag = await listing.get(lambda: self.call(_listing_reply, self.service, admin))
        # Serialized and hashed once per shared listing, not once per client.
        self.set_header("Content-Type", "application/json")
        self.set_header("Etag", etag)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
        else:
            self.finish(body)


def _listing_reply(service: EnvService, admin: bool) -> tuple[bytes, str]:
    """The ``GET envs`` body and its entity tag (the SHA-1 of the body, as tornado makes them)."""
    body = safe_json({"envs": service.summaries(admin)}).encode()
    return body, f'"{hashlib.sha1(body, usedforsecurity=False).hexdigest()}"'


class EnvHandler(EnvShareHandler):
    """``GET envs/{name}``: provenance, history, channels and kernels of one environment."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """One environment in detail, with how the servers that report on it see it."""
        detail = await self.call(self.service.detail, name, self.admin)
        detail["nodes"] = await self._nodes(detail["name"])
        self.reply(detail)

    async def _nodes(self, name: str) -> dict[str, Any]:
        if self.requests is None:
            return {"agree": None, "servers": None, "message": "The request service is unavailable."}
        try:
            prints = await asyncio.get_running_loop().run_in_executor(
                self.requests.executor, self.requests.store.fingerprints, name
            )
        except StoreError as err:
            return {"agree": None, "servers": None, "message": f"The request service is unavailable ({err})."}
        return {
            "agree": len({p.fingerprint for p in prints}) <= 1,
            "servers": [jsonable(p) for p in prints],
        }


class DriftHandler(EnvShareHandler):
    """``GET envs/{name}/drift[?deep=1]``: installed state against the lock."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The drift report (deep hashes files: slow on large environments)."""
        deep = self.flag("deep")
        self.reply(await self.call(self.service.drift, name, deep, self.admin))


class PackagesHandler(EnvShareHandler):
    """``GET envs/{name}/packages``: installed conda and pip packages."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The installed packages."""
        self.reply({"packages": await self.call(self.service.packages, name, self.admin)})


class WhoamiHandler(EnvShareHandler):
    """``GET whoami``: the caller and whether they administer shared environments."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Who the server thinks the caller is."""
        self.reply({"name": self.user_name, "is_admin": self.admin})


class RequestsHandler(EnvShareHandler):
    """``GET|POST requests``: the request queue, and filing (or supporting) a request."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Requests, filtered by ``mine=1``, ``env=`` and ``status=``."""
        service = self.request_service()
        await self.call_store(service.ingest)  # intents from `%envshare request` show without waiting
        mine = self.flag("mine")
        found = await self.call_store(
            lambda: service.store.list(
                env=self.get_argument("env", None),
                status=self.get_argument("status", None),
                user=self.user_name if mine else None,
            )
        )
        self.reply({"requests": [r.as_json() for r in found]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """File a request; the open one for the same env and specs gains a supporter instead."""
        service = self.request_service()
        body = self.json_body()
        request, created = await self.call_store(service.create, self.user_name, body, self.admin)
        self.set_status(201 if created else 200)
        self.reply({"request": request.as_json(), "created": created})


class RequestHandler(EnvShareHandler):
    """``GET|PATCH requests/{id}``: one request; support, withdraw, approve, reject, done."""

    @web.authenticated
    @authorized
    async def get(self, request_id: str) -> None:
        """One request with supporters and history."""
        service = self.request_service()
        self.reply(
            {"request": (await self.call_store(service.store.get, self.request_id(request_id))).as_json()}
        )

    @web.authenticated
    @authorized
    async def patch(self, request_id: str) -> None:
        """Act on a request: ``{"action": ..., "comment": ...}``."""
        service = self.request_service()
        body = self.json_body()
        request = await self.call_store(
            service.act, self.request_id(request_id), self.user_name, self.admin, body
        )
        self.reply({"request": request.as_json()})


class RequestPatchHandler(EnvShareHandler):
    """``GET requests/{id}/patch``: the environment.yml change that satisfies a request."""

    @web.authenticated
    @authorized
    async def get(self, request_id: str) -> None:
        """The unified diff against the environment's spec file."""
        service = self.request_service()
        self.reply(await self.call_store(service.patch, self.request_id(request_id)))


class UsageHandler(EnvShareHandler):
    """``GET usage`` (admins): launches per env and kernel, users, last use, intercepted packages."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Usage and demand."""
        if not self.admin:
            raise web.HTTPError(403, "Only admins can see usage.")
        service = self.request_service()
        await self.call_store(service.ingest)
        self.reply(await self.call_store(service.usage))


_NAME = r"(?P<name>[^/]+)"
# Any segment routes to the request handlers, so that a malformed id gets a JSON 404 from them rather
# than the server's HTML page; EnvShareHandler.request_id tells ids from the rest.
_ID = r"(?P<request_id>[^/]+)"


def handlers(
    service: EnvService, envshare: EnvShare, requests: RequestService | None
) -> list[tuple[str, type[EnvShareHandler], dict[str, Any]]]:
    """The route table of the REST API (the extension prefixes the server's base_url)."""
    api = url_path_join("/", "envshare", "api")
    kwargs = {"service": service, "envshare": envshare, "requests": requests}
    return [
        (url_path_join(api, "envs"), EnvsHandler, kwargs),
        (url_path_join(api, "envs", _NAME), EnvHandler, kwargs),
        (url_path_join(api, "envs", _NAME, "drift"), DriftHandler, kwargs),
        (url_path_join(api, "envs", _NAME, "packages"), PackagesHandler, kwargs),
        (url_path_join(api, "whoami"), WhoamiHandler, kwargs),
        (url_path_join(api, "requests"), RequestsHandler, kwargs),
        (url_path_join(api, "requests", _ID), RequestHandler, kwargs),
        (url_path_join(api, "requests", _ID, "patch"), RequestPatchHandler, kwargs),
        (url_path_join(api, "usage"), UsageHandler, kwargs),
    ]
