"""The ``envshare-provisioner``: launches shared-environment kernels activated, isolated and recorded."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Unicode

from .activation import ActivationCache, IsolationSettings, apply_isolation
from .arming import arm, base_url_of, ensure_shims, guard_context
from .config import EnvShare, current_user, envshare_settings
from .discovery import EnvUnavailable, KernelEntry, SharedEnv, Snapshot, discovery_for, load_kernel_json
from .spool import append_event, make_event

FALLBACK_ARGV = [sys.executable, "-m", "jupyter_envshare.fallback", "-f", "{connection_file}"]

_ACTIVATION: dict[str, ActivationCache] = {}


@dataclass(frozen=True)
class _Launch:
    """What a launch found: the environment, its kernel, the kernel.json read now, and the
    places the guard must protect."""

    env: SharedEnv
    entry: KernelEntry
    spec: dict[str, Any]
    protected: list[str]


def protected_places(settings: EnvShare, snapshot: Snapshot) -> list[str]:
    """Where no package command may write: the roots as configured and resolved, the installation
    each ``.../envs`` root belongs to, and every environment configured outside a root."""
    places: list[str] = []
    for root in settings.env_roots:
        for spelling in dict.fromkeys((Path(root).absolute(), Path(root).resolve())):
            places.append(str(spelling))
            if spelling.name == "envs":
                places.append(str(spelling.parent))
    for env in snapshot.envs:
        if env.source not in settings.env_roots:
            places.extend(dict.fromkeys((env.path, env.prefix)))
    return list(dict.fromkeys(places))


def join_url(base: str, *parts: str) -> str:
    """``base`` and URL path parts joined with single slashes (base keeps its leading slash)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def activation_cache(settings: EnvShare) -> ActivationCache:
    """The process-wide activation cache for a spool/runtime location."""
    cache = _ACTIVATION.get(settings.spool_dir)
    if cache is None:
        cache = _ACTIVATION[settings.spool_dir] = ActivationCache(
            settings.spool_dir, settings.activation_timeout
        )
    cache.timeout = settings.activation_timeout
    return cache


class EnvShareProvisioner(LocalProvisioner):
    """A LocalProvisioner that activates the shared environment without a shell.

    Each launch resolves the environment again (a swapped ``current`` link or a removed environment
    takes effect at once), re-reads the kernel's argv from its resource dir, and, when the
    environment cannot be used, starts a fallback kernel that tells the notebook why.
    """

    env = Unicode("", help="Name of the shared environment (set by the kernelspec).").tag(config=True)
    kernel = Unicode("", help="Kernel directory name inside the environment.").tag(config=True)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Point the kernelspec at the environment as it is now and build its activated env."""
        base_env: dict[str, str] = dict(kwargs.pop("env", None) or os.environ)
        # Config files, discovery and kernel.json all touch a possibly slow (network) filesystem:
        # off the event loop.
        settings = await asyncio.to_thread(envshare_settings, self.parent)
        try:
            launch = await asyncio.to_thread(self._resolve, settings)
        except EnvUnavailable as err:
            self.log.warning("[envshare] starting fallback kernel: %s", err.message)
            self.kernel_spec.argv = list(FALLBACK_ARGV)
            base_env["ENVSHARE_FALLBACK_MESSAGE"] = err.message
            await asyncio.to_thread(self._record, settings, "launch-failed", reason=err.message)
            kwargs["env"] = base_env
            return await super().pre_launch(**kwargs)

        shared = launch.env
        argv = list(launch.spec["argv"])
        env, warnings = await activation_cache(settings).activate(shared.prefix, shared.name, base_env)
        apply_isolation(
            env,
            shared.name,
            IsolationSettings(
                no_user_site=settings.no_user_site,
                pkgs_dirs=settings.pkgs_dirs,
                user=current_user(),
                home=str(Path.home()),
                extra_env=settings.extra_kernel_env,
            ),
        )
        env["ENVSHARE_ENV"] = shared.name
        env["ENVSHARE_PREFIX"] = shared.prefix
        env["ENVSHARE_SPOOL"] = settings.spool_dir
        if not Path(argv[0]).is_absolute():
            # A bare `python` must be the environment's, not the server's (jupyter_client would
            # otherwise substitute its own sys.executable).
            argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        if settings.guard_mode != "off":
            argv = await asyncio.to_thread(self._arm_guard, settings, launch, env, argv)
        self.kernel_spec.argv = argv
        self.kernel_spec.env = dict(launch.spec.get("env") or {})
        for warning in warnings:
            self.log.warning("[envshare] %s: %s", shared.name, warning)
        await asyncio.to_thread(self._record, settings, "launch", prefix=shared.prefix)
        kwargs["env"] = env
        return await super().pre_launch(**kwargs)

    def _resolve(self, settings: EnvShare) -> _Launch:
        engine = discovery_for(settings.discovery_config())
        snapshot = engine.snapshot(force=True)
        shared, entry = engine.resolve(self.env, self.kernel or None, snapshot)
        # argv is read again from the resource dir at every launch, whatever the listing cached.
        spec, problem = load_kernel_json(str(Path(entry.resource_dir, "kernel.json")))
        if spec is None:
            raise EnvUnavailable(self.env, f"Its kernel cannot be started: {problem}")
        return _Launch(shared, entry, spec, protected_places(settings, snapshot))

    def _arm_guard(
        self, settings: EnvShare, launch: _Launch, env: dict[str, str], argv: list[str]
    ) -> list[str]:
        try:
            shims: Path | None = ensure_shims(Path(settings.spool_dir))
        except OSError as err:  # without shims the IPython guard still works; say so in the log
            self.log.warning("[envshare] cannot write guard shims in %s: %s", settings.spool_dir, err)
            shims = None
        shared = launch.env
        catalog = shared.catalog or {}
        base_url = base_url_of(self.parent)
        context = guard_context(
            env=shared.name,
            prefix=shared.prefix,
            roots=launch.protected,
            mode=settings.guard_mode,
            template=settings.advice_template,
            contact=str(catalog.get("contact") or catalog.get("owner") or settings.contact),
            spool=settings.spool_dir,
            user=current_user(),
            request_url=join_url(base_url, "envshare", "api", "requests") if base_url else None,
            shims=str(shims or ""),
        )
        return arm(env, argv, launch.entry.language, context, shims)

    def _record(self, settings: EnvShare, kind: str, **fields: Any) -> None:
        event = make_event(kind, current_user(), env=self.env, kernel=self.kernel, **fields)
        try:
            append_event(settings.spool_dir, event)
        except OSError as err:  # usage accounting must never stop a kernel
            self.log.warning("[envshare] cannot record %s event: %s", kind, err)
