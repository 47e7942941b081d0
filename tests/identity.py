"""An identity provider for tests with several users on one server.

jupyter_server's identity provider is the extension point hubs use; this one maps
``Authorization: token <name>-token`` to the user ``<name>`` (and ``hubadmin-token`` to a user whose
hub model says admin, as JupyterHub's does), so one test server can serve alice, bob and an admin.

A browser cannot send that header, so ``?token=<name>-token`` in a page URL names the user too and
sets the login cookie, as jupyter_server does for its own token: the browser's later requests
(JupyterLab's API calls, kernel websockets) are that user through the cookie, even when they also
carry the server's own token from the page config. Everything else falls back to the server's
token and cookie handling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

# Names a browser URL may carry (headers take any name, as tests of odd names need).
_URL_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
_SUFFIX = "-token"


@dataclass
class HubModelUser(User):
    """A user carrying a JupyterHub user model, as single-user servers under a hub have."""

    hub_user: dict[str, Any] = field(default_factory=dict)


def _named_user(token_value: str, *, strict: bool = False) -> User | None:
    """The user a ``<name>-token`` stands for, or None for any other value."""
    if not token_value.endswith(_SUFFIX):
        return None
    name = token_value[: -len(_SUFFIX)]
    if not name or (strict and not _URL_NAME.fullmatch(name)):
        return None
    if name == "hubadmin":
        return HubModelUser(username=name, name=name, hub_user={"name": name, "admin": True, "groups": []})
    return User(username=name, name=name)


class NamedTokenUsers(IdentityProvider):
    """``token <name>-token`` (header) or ``?token=<name>-token`` (URL) is user <name>."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        auth = handler.request.headers.get("Authorization", "")
        if auth.startswith("token "):
            user = _named_user(auth[len("token ") :])
            if user is not None:
                # As for the server's own token: a token-authenticated API call needs no XSRF cookie.
                handler._token_authenticated = True
                return user
        user = _named_user(handler.get_argument("token", ""), strict=True)
        if user is not None:
            # As jupyter_server does for its own token in a URL: remember the user in the login
            # cookie, so the page's later requests without this token are still this user.
            self.set_login_cookie(handler, user)
            handler._token_authenticated = True
            return user
        return await super().get_user(handler)  # type: ignore[no-any-return]


def token(name: str) -> dict[str, str]:
    """Headers that make a request come from user ``name``."""
    return {"Authorization": f"token {name}{_SUFFIX}"}
