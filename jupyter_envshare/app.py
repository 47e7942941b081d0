"""The server extension: wires the services into the server and keeps them warm in the background."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop, PeriodicCallback

from .config import EnvShare, envshare_settings
from .discovery import discovery_for
from .handlers import handlers
from .install_requests import RequestService
from .kernelspecs import EnvShareKernelSpecManager
from .service import EnvService
from .store import RequestStore, StoreError

_FROZEN = False  # gc.freeze() has been called by a server in this process


class EnvShareApp(ExtensionApp):
    """jupyter_envshare's server extension."""

    name = "jupyter_envshare"
    load_other_extensions = True

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        """Make the server list shared kernels, unless an admin chose another kernelspec manager.

        Linking runs before the server creates its managers, so the class can still be set here;
        a config file cannot do it for a package, as drop-in config files only enable extensions.
        """
        super()._link_jupyter_server_extension(serverapp)
        if "kernel_spec_manager_class" not in serverapp.config.get("ServerApp", {}):
            serverapp.kernel_spec_manager_class = EnvShareKernelSpecManager

    def initialize_settings(self) -> None:
        """Share one discovery engine through the tornado settings and check the kernelspec manager."""
        settings: EnvShare = envshare_settings(self.serverapp)
        discovery = discovery_for(settings.discovery_config())
        self.service = EnvService(discovery)
        self.store = RequestStore(settings.database_url)
        self.requests = RequestService(self.store, self.service, settings.spool_dir)
        # Nothing in the kernel path needs the database: when it is down, kernels still list and
        # start, the request endpoints answer 503, and the refresh below keeps trying.
        self._store_ready = self._prepare_store()
        self.settings.update({"envshare_config": settings, "envshare_service": self.service})
        assert self.serverapp is not None
        ksm = self.serverapp.kernel_spec_manager
        if not isinstance(ksm, EnvShareKernelSpecManager):
            self.log.warning(
                "[envshare] ServerApp.kernel_spec_manager_class is %s, so shared environments are "
                "not listed as kernels. Set it to "
                "jupyter_envshare.kernelspecs.EnvShareKernelSpecManager.",
                type(ksm).__name__,
            )
        snap = discovery.snapshot(force=True)
        usable = sum(1 for e in snap.envs if e.usable)
        broken = [e.name for e in snap.envs if e.allowed and not e.usable]
        self.log.info(
            "[envshare] %d shared environments with %d kernels%s",
            usable,
            len(snap.kernels),
            f"; unusable: {', '.join(broken)}" if broken else "",
        )
        if settings.freeze_startup_objects:
            # Once the loop runs, every extension has been loaded: what exists then lives as long as
            # the server does.
            IOLoop.current().add_callback(self._freeze_startup_objects)
        self._refresher: PeriodicCallback | None = None
        if settings.refresh_interval > 0:
            self._refresher = PeriodicCallback(self._refresh, settings.refresh_interval * 1000)
            self._refresher.start()
            IOLoop.current().add_callback(self._refresh)  # statuses and fingerprints right away

    def _freeze_startup_objects(self) -> None:
        global _FROZEN
        if _FROZEN or not gc.isenabled():
            return  # once per process (test suites start many servers in one); never against a choice
        _FROZEN = True
        gc.collect()
        gc.freeze()
        self.log.info(
            "[envshare] %d objects from the server's start are exempt from full garbage collections "
            "(EnvShare.freeze_startup_objects)",
            gc.get_freeze_count(),
        )

    def initialize_handlers(self) -> None:
        """The REST API under envshare/api/."""
        self.handlers.extend(handlers(self.service, self.settings["envshare_config"], self.requests))

    async def _refresh(self) -> None:
        # A network filesystem may answer slowly: the stat calls and drift digests run in a thread.
        await asyncio.to_thread(self._refresh_blocking)

    def _prepare_store(self) -> bool:
        try:
            self.store.migrate()
        except (StoreError, OSError) as err:
            self.log.error("[envshare] the request database is not available yet: %s", err)
            return False
        return True

    def _refresh_blocking(self) -> None:
        snap = self.service.discovery.snapshot(force=True)
        for env in snap.envs:
            if env.allowed:
                self.service.status(env)  # publishes to the status board the kernelspecs read
        if not self._store_ready:
            self._store_ready = self._prepare_store()
        if not self._store_ready:
            return
        host = socket.gethostname()
        try:
            self.requests.ingest()
            for env in snap.envs:
                if env.usable:
                    fingerprint, count = self.service.fingerprint(env)
                    self.store.record_fingerprint(env.name, host, fingerprint, count)
        except StoreError as err:
            self.log.warning("[envshare] request database: %s", err)

    async def stop_extension(self) -> None:
        """Stop the background refresh and close the database."""
        if getattr(self, "_refresher", None) is not None:
            self._refresher.stop()  # type: ignore[union-attr]
        if getattr(self, "store", None) is not None:
            await asyncio.to_thread(self.store.close)
