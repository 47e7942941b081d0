"""The latest drift status of each environment, shared by the service (writer) and the kernelspecs.

Kept apart so that listing kernels never imports the drift and lock-file machinery.
"""

from __future__ import annotations

import threading


class StatusBoard:
    """The latest drift status per environment prefix, for the kernelspec metadata."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, str] = {}
        self.version = 0

    def get(self, prefix: str) -> str | None:
        """The last known status of ``prefix``."""
        return self._status.get(prefix)

    def publish(self, prefix: str, status: str) -> None:
        """Record a status; bumps ``version`` when it changed."""
        with self._lock:
            if self._status.get(prefix) != status:
                self._status[prefix] = status
                self.version += 1


STATUS_BOARD = StatusBoard()
