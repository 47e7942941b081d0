"""Sharing one computation among concurrent callers, without ever answering with an old result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class SharedListing:
    """Concurrent ``GET envs`` share one listing, computed after each of them arrived.

    A listing revalidates every environment against the disk; fifty clients asking at once would do
    the same stat calls fifty times over, queueing on the same locks and threads. A request that comes
    while a listing runs waits for it to end and shares the next one with the others that came
    meanwhile: no answer is older than its request.
    """

    def __init__(self) -> None:
        self._running: asyncio.Future[Any] | None = None
        self._next: asyncio.Future[Any] | None = None

    async def get(self, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The result of a ``compute()`` that starts after this call (shared with concurrent calls)."""
        if self._next is None:
            self._next = asyncio.ensure_future(self._after(self._running, compute))
            # its error is its waiters' to see, and no one else's, even if they all went away
            self._next.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(self._next)

    async def _after(
        self, previous: asyncio.Future[Any] | None, compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        if previous is not None:
            await asyncio.wait([previous])  # its result predates some of our requests
        this, self._next = self._next, None  # later requests wait for a listing after this one
        self._running = this
        try:
            return await compute()
        finally:
            if self._running is this:
                self._running = None
