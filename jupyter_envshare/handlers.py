"""The REST API under ``{base_url}envshare/api/``: thin handlers over the services.

Every verb is authenticated and authorized against the ``envshare`` auth resource; domain errors
become JSON ``{code, message}`` a person can act on, in one place (``EnvShareHandler``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .config import EnvShare, is_admin
from .service import EnvNotFound, EnvService, ServiceError

AUTH_RESOURCE = "envshare"


class EnvShareHandler(APIHandler):
    """Base of every envshare handler: auth resource, JSON errors, service access."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, service: EnvService, envshare: EnvShare) -> None:
        """Receive the service and settings from the route table."""
        self.service = service
        self.envshare = envshare

    @property
    def admin(self) -> bool:
        """Whether the caller administers shared environments (sees denied and broken ones too)."""
        return is_admin(self.current_user, self.envshare)

    async def call(self, func: Any, *args: Any) -> Any:
        """Run blocking service work (filesystem, hashing) off the event loop, mapping its errors."""
        try:
            return await asyncio.to_thread(func, *args)
        except EnvNotFound as err:
            raise web.HTTPError(404, str(err)) from err
        except ServiceError as err:
            raise web.HTTPError(err.status, str(err)) from err

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors as ``{code, message}`` (plus jupyter_server's ``reason``)."""
        self.set_header("Content-Type", "application/json")
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], web.HTTPError) and exc_info[1].log_message:
            message = exc_info[1].log_message
        elif status_code >= 500:
            message = "Internal error in jupyter_envshare; the server log has the details."
        self.finish(json.dumps({"code": status_code, "message": message, "reason": self._reason}))

    def reply(self, data: Any) -> None:
        """Send ``data`` as JSON."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class EnvsHandler(EnvShareHandler):
    """``GET envs``: every environment this user may see, summarized."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List environment summaries."""
        self.reply({"envs": await self.call(self.service.summaries, self.admin)})


class EnvHandler(EnvShareHandler):
    """``GET envs/{name}``: provenance, history, channels and kernels of one environment."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """One environment in detail."""
        self.reply(await self.call(self.service.detail, name, self.admin))


class DriftHandler(EnvShareHandler):
    """``GET envs/{name}/drift[?deep=1]``: installed state against the lock."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The drift report (deep hashes files: slow on large environments)."""
        deep = self.get_argument("deep", "0").lower() in ("1", "true", "yes")
        self.reply(await self.call(self.service.drift, name, deep, self.admin))


class PackagesHandler(EnvShareHandler):
    """``GET envs/{name}/packages``: installed conda and pip packages."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The installed packages."""
        self.reply({"packages": await self.call(self.service.packages, name, self.admin)})


_NAME = r"(?P<name>[^/]+)"


def handlers(
    service: EnvService, envshare: EnvShare
) -> list[tuple[str, type[EnvShareHandler], dict[str, Any]]]:
    """The route table of the REST API (the extension prefixes the server's base_url)."""
    api = url_path_join("/", "envshare", "api")
    kwargs = {"service": service, "envshare": envshare}
    return [
        (url_path_join(api, "envs"), EnvsHandler, kwargs),
        (url_path_join(api, "envs", _NAME), EnvHandler, kwargs),
        (url_path_join(api, "envs", _NAME, "drift"), DriftHandler, kwargs),
        (url_path_join(api, "envs", _NAME, "packages"), PackagesHandler, kwargs),
    ]
