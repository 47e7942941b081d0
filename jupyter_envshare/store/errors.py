"""Domain errors of the request store, each with the HTTP status a handler should answer with."""

from __future__ import annotations


class StoreError(Exception):
    """Something went wrong in the request store; the message says what."""

    status = 500


class StoreUnavailable(StoreError):
    """The database cannot be reached (down, unreachable, or too busy); try again later."""

    status = 503


class RequestNotFound(StoreError):
    """No request has this id."""

    status = 404


class NotAllowed(StoreError):
    """The user may not do this to this request."""

    status = 403


class InvalidTransition(StoreError):
    """The request's status does not allow this change (e.g. approving a withdrawn request)."""

    status = 409
