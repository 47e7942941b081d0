"""Arming the install guard in a shared-environment kernel: PATH shims, the IPython extension, settings.

The guard code itself (``guard/envshare_guard``) runs inside the kernel with the standard library
only; this module is the server side that puts it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import stat
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GUARD_DIR = Path(__file__).resolve().parent / "guard"
SHIM_TOOLS = ("conda", "mamba", "micromamba", "pip", "pip3", "uv")
EXTENSION_ARG = "--ext=envshare_guard"

SHIM_MARKER = "jupyter_envshare guard shim"  # the guard recognises (and never runs) shims by it
_SHIM = """#!/bin/sh
# jupyter_envshare guard shim for {tool}: a change to the shared environment is stopped with
# advice, everything else runs the real {tool} found later on PATH (never another shim).
exec {python} -E -S -c {code} --shims "${{0%/*}}" {tool} "$@"
"""
_SHIM_CODE = (
    "import sys; sys.path.insert(0, {guard!r}); from envshare_guard.shim import main; sys.exit(main())"
)


def shim_scripts(python: str = sys.executable, guard_dir: Path = GUARD_DIR) -> dict[str, str]:
    """The text of each PATH shim: it runs the guard's shim logic with the server's Python."""
    code = _SHIM_CODE.format(guard=str(guard_dir))
    return {
        tool: _SHIM.format(tool=tool, python=shlex.quote(python), code=shlex.quote(code))
        for tool in SHIM_TOOLS
    }


def ensure_shims(base: Path, scripts: Mapping[str, str] | None = None) -> Path:
    """Write the shims (once per content) under ``base``; return their directory.

    The directory name carries a digest of the scripts, so servers on different nodes sharing a
    home directory never overwrite each other's shims. Directories are created private (0700);
    an existing shim is used only when it is ours, a regular file nobody else can write, with
    exactly the expected text; otherwise it is rewritten. Raises OSError when the directory or a
    shim belongs to someone else.
    """
    scripts = dict(scripts if scripts is not None else shim_scripts())
    digest = hashlib.sha256(json.dumps(scripts, sort_keys=True).encode()).hexdigest()[:12]
    directory = base / f"shims-{digest}"
    _private_directory(directory)
    for tool, text in scripts.items():
        path = directory / tool
        if not _is_our_shim(path, text):
            _write_shim(directory, tool, text)
    return directory


def _private_directory(directory: Path) -> None:
    missing: list[Path] = []
    node = directory
    while not os.path.lexists(node) and node != node.parent:
        missing.append(node)
        node = node.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{directory} is not a directory")
    if info.st_uid != os.getuid():
        raise OSError(f"{directory} belongs to uid {info.st_uid}, not to this user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        directory.chmod(0o700)


def _is_our_shim(path: Path, text: str) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if info.st_uid != os.getuid():
        raise OSError(f"{path} belongs to uid {info.st_uid}, not to this user")
    if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o022:
        return False
    if not stat.S_IMODE(info.st_mode) & stat.S_IXUSR:
        return False
    try:
        return path.read_bytes() == text.encode()
    except OSError:
        return False


def _write_shim(directory: Path, tool: str, text: str) -> None:
    tmp = directory / f".{tool}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o700)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        tmp.chmod(0o755)
        tmp.replace(directory / tool)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def guard_context(
    *,
    env: str,
    prefix: str,
    roots: Sequence[str],
    mode: str,
    template: str,
    contact: str,
    spool: str,
    user: str,
    request_url: str | None,
    shims: str,
) -> str:
    """The ``ENVSHARE_GUARD`` value the in-kernel guard and the shims read.

    ``roots`` are the protected places: everything at or under one of them counts as shared (the
    configured and resolved env roots, each installation's base, explicit env prefixes). The guard
    also protects the base of any ``<base>/envs`` root and of the env's own ``<base>/envs/<env>``.
    """
    return json.dumps(
        {
            "env": env,
            "prefix": prefix,
            "roots": list(roots),
            "mode": mode,
            "template": template,
            "contact": contact,
            "spool": spool,
            "user": user,
            "request_url": request_url,
            "shims": shims,
        }
    )


def is_ipython_kernel(argv: Sequence[str], language: str) -> bool:
    """Whether a kernel command starts ipykernel (the only kind the IPython extension fits)."""
    return language.lower() == "python" and any("ipykernel" in part for part in argv)


def arm(
    env: dict[str, str], argv: list[str], language: str, context_json: str, shims: Path | None
) -> list[str]:
    """Put the shims first on PATH, pass the settings, and load the extension into ipykernels."""
    if shims is not None:
        env["PATH"] = os.pathsep.join([str(shims), env.get("PATH", "")])
    env["ENVSHARE_GUARD"] = context_json
    if not is_ipython_kernel(argv, language):
        return argv
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), existing] if existing else [str(GUARD_DIR)])
    return [*argv, EXTENSION_ARG] if EXTENSION_ARG not in argv else argv


def base_url_of(component: Any) -> str | None:
    """The server's base_url seen from a kernel manager, or None outside a server."""
    node = component
    for _ in range(6):
        if node is None:
            break
        url = getattr(node, "base_url", None)
        if isinstance(url, str):
            return url
        node = getattr(node, "parent", None)
    return None
