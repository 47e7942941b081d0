"""Validation of what users send, and the normalized form of specs used to fold duplicate requests.

Text is stored exactly as given; only its length and encodability are checked here. NUL characters
are refused on every backend because PostgreSQL text cannot hold them (SQLite could, and the two
backends must behave alike).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

MAX_SPECS = 50
MAX_SPEC_LENGTH = 200
MAX_REASON_LENGTH = 4000
MAX_COMMENT_LENGTH = 4000
MAX_NAME_LENGTH = 255  # env, user, host and kernel names
MAX_FINGERPRINT_LENGTH = 128

# An optional `channel::` prefix, then the package name (the guard counts attempts by the same name).
_NAME = re.compile(r"^(?:[^\s:]+::)?([A-Za-z0-9_][A-Za-z0-9._\-]*)")
_AROUND_OPERATOR = re.compile(r"\s*([<>=!~,|])\s*")


def check_text(value: object, what: str, *, limit: int, required: bool = True) -> str:
    """``value`` if it is storable text of at most ``limit`` characters; ValueError saying why not."""
    if not isinstance(value, str):
        raise ValueError(f"The {what} must be text, not {type(value).__name__}.")
    if required and not value.strip():
        raise ValueError(f"The {what} must not be empty.")
    if len(value) > limit:
        raise ValueError(f"The {what} is {len(value)} characters long; at most {limit} are allowed.")
    if "\x00" in value:
        raise ValueError(f"The {what} contains a NUL character, which cannot be stored.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"The {what} is not valid Unicode text (it contains a lone surrogate).") from None
    return value


def check_specs(specs: Sequence[str] | Iterable[str]) -> tuple[str, ...]:
    """The specs as given, if there are 1 to MAX_SPECS of them, each non-empty and short enough."""
    if isinstance(specs, str):
        raise ValueError("The specs must be a list of strings, not one string.")
    items = tuple(specs)
    if not items:
        raise ValueError("A request needs at least one spec.")
    if len(items) > MAX_SPECS:
        raise ValueError(f"A request has at most {MAX_SPECS} specs; this one has {len(items)}.")
    for index, spec in enumerate(items, 1):
        check_text(spec, f"spec #{index}", limit=MAX_SPEC_LENGTH)
    return items


def normalize_spec(spec: str) -> str:
    """One spec in the form duplicates are compared in: trimmed, single spaces, lower-case name.

    Spaces around version operators are dropped too (``polars >=1.0`` and ``polars>=1.0`` are the
    same MatchSpec); spaces that separate a version from a build string are kept.
    """
    text = " ".join(spec.split())
    match = _NAME.match(text)
    if not match:
        return text
    head, rest = text[: match.end()].lower(), text[match.end() :]
    return head + _AROUND_OPERATOR.sub(r"\1", rest)


def normalized_specs(specs: Iterable[str]) -> tuple[str, ...]:
    """The set of normalized specs, sorted: two requests with the same set are the same request."""
    return tuple(sorted({normalize_spec(spec) for spec in specs}))


def spec_key(specs: Iterable[str]) -> str:
    """A fixed-length key of the normalized spec set (what the database indexes, unique per open request)."""
    return hashlib.sha256("\n".join(normalized_specs(specs)).encode()).hexdigest()


def package_name(spec: str) -> str | None:
    """The lower-case package name a spec is about (the name intercepted attempts are counted by)."""
    match = _NAME.match(spec.strip())
    return match.group(1).lower() if match else None


def package_names(specs: Iterable[str]) -> tuple[str, ...]:
    """The distinct package names of specs, sorted."""
    return tuple(sorted({name for name in map(package_name, specs) if name}))
