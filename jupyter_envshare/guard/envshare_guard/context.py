"""The guard's settings for this kernel, as the provisioner passed them (``ENVSHARE_GUARD``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import List, Mapping, Optional

from .commands import Target

ENV_VAR = "ENVSHARE_GUARD"
MODES = ("advise", "warn", "off")


@dataclass
class GuardContext:
    """Which shared environment this kernel runs in and how the guard should behave."""

    env: str
    prefix: str
    roots: List[str] = field(default_factory=list)
    mode: str = "advise"
    template: str = ""
    contact: str = "the admins of this hub"
    spool: str = ""
    user: str = ""
    request_url: Optional[str] = None
    shims: str = ""

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Optional["GuardContext"]:
        """The context from the environment, or None when this is no guarded kernel."""
        raw = (environ if environ is not None else os.environ).get(ENV_VAR)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.get("env") or not data.get("prefix"):
            return None
        mode = str(data.get("mode") or "advise")
        return cls(
            env=str(data["env"]),
            prefix=str(data["prefix"]),
            roots=[str(r) for r in data.get("roots") or []],
            mode=mode if mode in MODES else "advise",
            template=str(data.get("template") or ""),
            contact=str(data.get("contact") or "the admins of this hub"),
            spool=str(data.get("spool") or ""),
            user=str(data.get("user") or ""),
            request_url=data.get("request_url") or None,
            shims=str(data.get("shims") or ""),
        )

    def target(self, cwd: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Target:
        """What package commands in this kernel land in by default.

        ``environ`` is the environment the command starts with (default: this process's).
        """
        try:
            here = cwd if cwd is not None else os.getcwd()
        except OSError:
            here = ""
        return Target(
            env=self.env,
            prefix=self.prefix,
            roots=tuple(self.roots),
            home=os.path.expanduser("~"),
            cwd=here,
            variables=environ if environ is not None else os.environ,
            shims=self.shims,
        )
