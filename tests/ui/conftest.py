"""Fixtures of the browser tests: a shared installation, a real ``jupyter lab`` and Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ..conftest import artifact_dir
from .browser import Browser, launch_browser
from .server import LabServer, start_lab
from .site import UiSite, build_ui_site


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ui: drives JupyterLab in a real browser (Chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item, so fixtures can tell whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# pytest-jupyter's autouse fixtures manage an in-process server and its event loop. These tests run
# the server in a subprocess, and Playwright's sync API keeps its own loop running in this
# process, which those fixtures would try to close: turn them off here.
@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """No in-process event loop for browser tests (overrides pytest-jupyter's)."""


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """No in-process server to clean up (overrides pytest-jupyter's)."""


@pytest.fixture(scope="package")
def ui_site(tmp_path_factory: pytest.TempPathFactory) -> UiSite:
    """The installation of tests/ui/site.py."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to commit the spec the provenance links to (apt-get install git)")
    return build_ui_site(tmp_path_factory.mktemp("ui-site"))


@pytest.fixture(scope="package")
def lab(ui_site: UiSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """``jupyter lab`` serving the installation, with alice and admin as users."""
    server = start_lab(tmp_path_factory.mktemp("lab"), ui_site.inst.current_envs_dir)
    try:
        yield server
    finally:
        server.stop()
        # The log is worth reading when something failed; keep it beside the screenshots.
        shutil.copyfile(server.log_path, artifacts() / "server.log")


_ARTIFACTS: list[Path] = []


def artifacts() -> Path:
    """test-artifacts/ui/, emptied once per run."""
    if not _ARTIFACTS:
        _ARTIFACTS.append(artifact_dir("ui"))
    return _ARTIFACTS[0]


@pytest.fixture(scope="package")
def browser(lab: LabServer) -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright.

    Depends on ``lab`` so the installation is built first: Playwright's sync API keeps an event
    loop running, and the py-rattler builders refuse to start their own inside one.
    """
    with launch_browser(artifacts()) as launched:
        yield launched


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    # A failed browser test leaves a picture of every open page: what the person would have seen.
    yield
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed or "browser" not in request.fixturenames:
        return
    browser: Browser = request.getfixturevalue("browser")
    for session in browser.sessions:
        session.shot(f"FAILED-{request.node.name}")
