"""Conda activation without a shell: the environment variables a kernel of a shared env starts with.

What ``conda activate`` would do is reproduced from files: PATH, ``CONDA_PREFIX``,
``CONDA_DEFAULT_ENV``, the env vars of ``conda-meta/state`` and ``etc/conda/env_vars.d``. Only an
environment that ships ``etc/conda/activate.d`` scripts needs a shell, and then once: the effect of
the scripts is recorded as a set of edits, cached on the scripts' mtimes (in memory and in the
runtime dir, so kernels launched by nbclient or papermill profit too) and replayed on every launch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("jupyter_envshare.activation")

# Variables a parent environment (the server's venv or conda env) must not leak into a shared kernel.
_LEAKY = ("VIRTUAL_ENV", "PYTHONHOME", "CONDA_PREFIX_1", "CONDA_PREFIX_2", "CONDA_PREFIX_3")

Edit = tuple[str, str, str]  # (variable, "set" | "prepend" | "append" | "unset", value)


@dataclass(frozen=True)
class IsolationSettings:
    """Per-user isolation applied on top of activation."""

    no_user_site: bool = True
    pkgs_dirs: str = ""
    user: str = ""
    home: str = ""
    extra_env: Mapping[str, str] | None = None


def static_activation(prefix: str, env_name: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment ``conda activate`` would give, from files only (no activate.d scripts)."""
    env = dict(base)
    old_dirs = {os.path.join(env[var], "bin") for var in ("CONDA_PREFIX", "VIRTUAL_ENV") if env.get(var)}
    for var in _LEAKY:
        env.pop(var, None)
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p not in old_dirs]
    env["PATH"] = os.pathsep.join([os.path.join(prefix, "bin"), *path])
    env["CONDA_PREFIX"] = prefix
    env["CONDA_DEFAULT_ENV"] = env_name
    env["CONDA_SHLVL"] = "1"
    env["CONDA_PROMPT_MODIFIER"] = f"({env_name}) "
    # Packages' env_vars.d first; the environment's own `conda env config vars` win, as in conda.
    env.update(_env_vars_d(prefix))
    env.update(_state_vars(prefix))
    return env


def apply_isolation(env: dict[str, str], env_name: str, settings: IsolationSettings) -> None:
    """Keep ``~/.local`` from shadowing shared packages; give each user a private package cache."""
    if settings.no_user_site:
        env["PYTHONNOUSERSITE"] = "1"
    if settings.pkgs_dirs:
        env["CONDA_PKGS_DIRS"] = settings.pkgs_dirs.format(
            user=settings.user, home=settings.home, env=env_name
        )
    if settings.extra_env:
        env.update({str(k): str(v) for k, v in settings.extra_env.items()})


def activate_scripts(prefix: str) -> list[str]:
    """The POSIX activation scripts of an environment, in the order conda runs them."""
    directory = Path(prefix) / "etc" / "conda" / "activate.d"
    try:
        return sorted(str(p) for p in directory.iterdir() if p.suffix == ".sh" and p.is_file())
    except OSError:
        return []


class ActivationCache:
    """Runs activate.d scripts once per (prefix, scripts' mtimes) and replays their edits."""

    def __init__(self, cache_dir: str | None, timeout: float = 30.0) -> None:
        self.cache_dir = cache_dir
        self.timeout = timeout
        self._memory: dict[str, list[Edit]] = {}

    async def activate(
        self, prefix: str, env_name: str, base: Mapping[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """The activated environment, and warnings for the notebook log (failed scripts)."""
        env = static_activation(prefix, env_name, base)
        scripts = activate_scripts(prefix)
        if not scripts:
            return env, []
        key = _scripts_key(prefix, scripts)
        edits = self._memory.get(key)
        if edits is None:
            edits = self._load(key)
        warnings: list[str] = []
        if edits is None:
            try:
                edits = await self._run_scripts(scripts, env)
            except ActivationError as err:
                log.warning("[envshare] activation scripts of %s failed: %s", prefix, err)
                return env, [str(err)]
            self._store(key, edits)
        self._memory[key] = edits
        return replay(env, edits), warnings

    async def _run_scripts(self, scripts: list[str], env: dict[str, str]) -> list[Edit]:
        bash = shutil.which("bash", path=env.get("PATH")) or shutil.which("bash")
        if bash is None:
            raise ActivationError("bash is not available to run activate.d scripts")
        program = 'for script in "$@"; do . "$script" || exit $?; done; env -0'
        proc = await asyncio.create_subprocess_exec(
            bash,
            "--noprofile",
            "--norc",
            "-c",
            program,
            "envshare-activate",
            *scripts,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ActivationError(f"activate.d scripts took longer than {self.timeout:g}s") from None
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip()[-500:]
            raise ActivationError(f"activate.d scripts exited with {proc.returncode}: {detail}")
        after = dict(item.split("=", 1) for item in out.decode(errors="replace").split("\0") if "=" in item)
        return diff_env(env, after)

    def _path(self, key: str) -> Path | None:
        return Path(self.cache_dir) / f"activation-{key}.json" if self.cache_dir else None

    def _load(self, key: str) -> list[Edit] | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return [(str(a), str(b), str(c)) for a, b, c in data["edits"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: str, edits: list[Edit]) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            # Activation may set tokens or licence servers: readable by this user only.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"edits": edits}))
            tmp.replace(path)
        except OSError as err:  # the cache is an optimisation; launching goes on without it
            log.debug("[envshare] cannot cache activation in %s: %s", path, err)


class ActivationError(Exception):
    """activate.d scripts could not be run."""


def diff_env(before: Mapping[str, str], after: Mapping[str, str]) -> list[Edit]:
    """The edits that turn ``before`` into ``after``, as prepends/appends where they are ones.

    Recording a PATH change as "prepend X" rather than its final value keeps the cached result
    right when the next launch starts from a different PATH.
    """
    ignored = {"_", "SHLVL", "PWD", "OLDPWD"}
    edits: list[Edit] = []
    for var, new in sorted(after.items()):
        if var in ignored:
            continue
        old = before.get(var)
        if old == new:
            continue
        # Only path-list growth counts as prepend/append ("1" -> "11" is a new value, not a prepend).
        if old and new.endswith(os.pathsep + old):
            edits.append((var, "prepend", new[: -len(old)]))
        elif old and new.startswith(old + os.pathsep):
            edits.append((var, "append", new[len(old) :]))
        else:
            edits.append((var, "set", new))
    edits.extend((var, "unset", "") for var in sorted(set(before) - set(after) - ignored))
    return edits


def replay(env: Mapping[str, str], edits: list[Edit]) -> dict[str, str]:
    """Apply recorded edits to a fresh environment."""
    result = dict(env)
    for var, op, value in edits:
        if op == "set":
            result[var] = value
        elif op == "prepend":
            result[var] = value + result.get(var, "")
        elif op == "append":
            result[var] = result.get(var, "") + value
        elif op == "unset":
            result.pop(var, None)
    return result


def _scripts_key(prefix: str, scripts: list[str]) -> str:
    parts: list[Any] = [prefix]
    for script in scripts:
        try:
            st = os.stat(script)
            parts.append((script, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((script, None))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _state_vars(prefix: str) -> dict[str, str]:
    try:
        with open(os.path.join(prefix, "conda-meta", "state"), "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    env_vars = data.get("env_vars") if isinstance(data, dict) else None
    if not isinstance(env_vars, dict):
        return {}
    return {str(k): str(v) for k, v in env_vars.items()}


def _env_vars_d(prefix: str) -> dict[str, str]:
    directory = Path(prefix) / "etc" / "conda" / "env_vars.d"
    result: dict[str, str] = {}
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix == ".json")
    except OSError:
        return result
    for path in files:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            log.warning("[envshare] ignoring unreadable %s", path)
            continue
        if isinstance(data, dict):
            result.update({str(k): str(v) for k, v in data.items()})
    return result
