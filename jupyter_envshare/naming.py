"""Stable kernel names and display names for shared environments (nb_conda_kernels-compatible by default)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# nb_conda_kernels shortens the usual kernel directory names; keeping its scheme lets notebooks saved
# with `conda-env-isis4.3.0-py` open unchanged.
SHORT_KERNEL_NAMES: Mapping[str, str] = {"python2": "py", "python3": "py", "ir": "r"}

_UNSAFE = re.compile(r"[^a-zA-Z0-9._\-]")


def clean_kernel_name(name: str) -> str:
    """Replace characters Jupyter does not accept in kernel names, keeping accented letters readable."""
    if not name.isascii():
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE.sub("_", name)


def kernel_name(name_format: str, env: str, raw_kernel: str, language: str) -> str:
    """The kernel name for kernel directory ``raw_kernel`` of environment ``env``."""
    lowered = raw_kernel.lower()
    short = SHORT_KERNEL_NAMES.get(lowered, lowered)
    return clean_kernel_name(
        name_format.format(env=env, kernel=short, raw_kernel=raw_kernel, language=language)
    )


def display_name(display_format: str, env: str, kernel_display: str, language: str) -> str:
    """The display name shown in the launcher and kernel picker."""
    return display_format.format(display_name=kernel_display, env=env, language=language)


def resolve_collisions(candidates: list[tuple[str, tuple[str, ...]]]) -> dict[tuple[str, ...], str]:
    """Give each candidate a unique name.

    ``candidates`` are ``(wanted_name, sort_key)`` pairs with distinct sort keys. Where several want
    the same name (compared case-insensitively, as Jupyter does), the one with the smallest sort key
    keeps it and the others get ``-2``, ``-3``... in sort-key order, so the outcome depends only on
    what exists, never on the order the disk lists it in.
    """
    groups: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for wanted, key in candidates:
        groups.setdefault(wanted.lower(), []).append((key, wanted))
    taken = set(groups)
    result: dict[tuple[str, ...], str] = {}
    for lowered in sorted(groups):
        members = sorted(groups[lowered])
        first_key, base = members[0]
        result[first_key] = base
        counter = 2
        for key, _wanted in members[1:]:
            while f"{base}-{counter}".lower() in taken:
                counter += 1
            name = f"{base}-{counter}"
            taken.add(name.lower())
            result[key] = name
    return result
