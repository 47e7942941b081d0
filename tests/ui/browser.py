"""Debian's Chromium driven by Playwright, with a session per user and console errors collected.

Never ``playwright install``: the browser is /usr/bin/chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser as Chromium
    from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = (1440, 900)


@dataclass
class Session:
    """One user's browser context and page, and the errors its console showed."""

    user: str
    context: BrowserContext
    page: Page
    shots: Path
    console_errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def shot(self, name: str) -> Path:
        """Save a full-window screenshot as test-artifacts/ui/<user>-<name>.png."""
        path = self.shots / f"{self.user}-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def element_shot(self, locator: Locator, name: str) -> Path:
        """Save a screenshot of one element."""
        path = self.shots / f"{self.user}-{name}.png"
        locator.screenshot(path=str(path))
        return path

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Record how long a step took (reported at the end of the run)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = time.perf_counter() - started


def wait_restored(page: Page) -> None:
    """Wait until JupyterLab has restored its layout (an open sidebar, tabs) from the workspace.

    Clicking a sidebar tab before that races with the restore, which may then close what the
    click opened. The server config exposes the app as window.jupyterapp.
    """
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    # In a new workspace the main area is empty, and the file browser opens a Launcher there once it
    # has listed the root folder, which may be seconds after `restored`; the Launcher takes the
    # focus, from whatever the test is doing by then. Wait for it, and for its activation.
    page.wait_for_function("() => !window.jupyterapp.shell.isEmpty('main')", timeout=60_000)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


@dataclass
class Browser:
    """The launched browser."""

    playwright: Playwright
    browser: Chromium
    shots: Path
    sessions: list[Session] = field(default_factory=list)

    def session(self, user: str, url: str) -> Session:
        """A fresh context for ``user`` with JupyterLab loaded from ``url``."""
        context = self.browser.new_context(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        session = Session(user=user, context=context, page=page, shots=self.shots)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                session.console_errors.append(f"{message.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: session.console_errors.append(f"uncaught: {error}"))
        with session.timed("load JupyterLab"):
            page.goto(url)
            # The shell is up and the plugins have activated once the left sidebar has our tab.
            page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='jp-envshare-sidebar']").wait_for(
                timeout=60_000
            )
            wait_restored(page)
        self.sessions.append(session)
        return session


@contextlib.contextmanager
def launch_browser(shots: Path) -> Iterator[Browser]:
    """Start Chromium headless; close every context and the browser afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python playwright is missing: pip install -e '.[test]' installs it")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield Browser(playwright=manager, browser=chromium, shots=shots)
        finally:
            chromium.close()
    finally:
        manager.stop()
