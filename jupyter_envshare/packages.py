"""Package records shared by provenance (what a lock says) and drift (what is installed).

Plain frozen dataclasses, so a lock file, an environment's conda-meta and pip's metadata all become
the same shape and can be compared field by field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

CONDA = "conda"
PYPI = "pypi"

_TOKEN = re.compile(r"/t/[^/]+")


@dataclass(frozen=True)
class PackageRef:
    """One package as a lock file names it or as an environment holds it.

    ``kind`` is ``conda`` or ``pypi``. Conda builds are compared by build *string* (conda-lock v1
    only guesses build numbers). ``channel`` is normalized with ``normalize_channel``.
    """

    name: str
    version: str
    kind: str = CONDA
    build: str = ""
    channel: str = ""
    subdir: str = ""
    url: str = ""
    md5: str = ""
    sha256: str = ""
    # pip-installed distributions: who installed it and from where (PEP 376 INSTALLER, PEP 610)
    installer: str = ""
    direct_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a package within one environment: kind and normalized name."""
        return (self.kind, normalize_name(self.name, self.kind))

    @property
    def dist(self) -> str:
        """``name-version-build`` (conda) or ``name==version`` (pypi), for people."""
        if self.kind == PYPI:
            return f"{self.name}=={self.version}"
        return f"{self.name}-{self.version}-{self.build}" if self.build else f"{self.name}-{self.version}"


def normalize_name(name: str, kind: str = CONDA) -> str:
    """Conda names are lower-case; PyPI names compare per PEP 503 (runs of -_. are one '-')."""
    lowered = name.strip().lower()
    return re.sub(r"[-_.]+", "-", lowered) if kind == PYPI else lowered


def normalize_channel(channel: str) -> str:
    """A channel as a comparable string: no token, no trailing slash, no subdir, https for http.

    ``https://mirror.example/conda-forge/linux-64/`` becomes ``https://mirror.example/conda-forge``;
    short names (``conda-forge``) stay as they are.
    """
    text = _TOKEN.sub("", channel.strip()).rstrip("/")
    for subdir in (
        "/noarch",
        "/linux-64",
        "/linux-aarch64",
        "/linux-ppc64le",
        "/osx-64",
        "/osx-arm64",
        "/win-64",
    ):
        if text.endswith(subdir):
            text = text[: -len(subdir)]
            break
    if text.startswith("http://"):
        text = "https://" + text[len("http://") :]
    return text


def channel_of_url(url: str) -> str:
    """The channel of a package URL (``.../channel/subdir/file.conda`` -> ``.../channel``)."""
    parts = url.rstrip("/").split("/")
    return normalize_channel("/".join(parts[:-2])) if len(parts) >= 3 else ""


def channel_alias() -> str:
    """The site's channel alias (``CONDA_CHANNEL_ALIAS``) without a trailing slash, or ""."""
    return os.environ.get("CONDA_CHANNEL_ALIAS", "").strip().rstrip("/")
