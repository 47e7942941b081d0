"""The "Shared environments" panel in a real browser, against a real server and real kernels.

One story, in order: alice finds environments and filters them, reads an in-sync and a drifted
environment, opens a notebook on a shared kernel, is stopped by the install guard and files a
request from its advice, files another from the form (after a validation error); bob supports
one and asks for the other again; an admin approves from the queue and copies the spec patch,
and reads usage: per kernel in an environment's detail, and every environment least recently
used first (which alice, no admin, cannot); alice sees the new status. Then the rest of a
request's life, each step on a request of its own filed through the API (so it does not depend
on the story): bob withdraws his open request (declining once, then confirming though alice
supports it); the admin rejects one with a comment and marks an approved one done (Enter in the
comment box deciding nothing), and reads why an action on an out-of-date card was refused. Every
step saves a screenshot under test-artifacts/ui/, and the browser console must stay free of errors.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import Route, expect

from jupyter_envshare.spool import append_event, make_event

from .browser import Browser, Session, wait_restored
from .conftest import artifacts
from .pages import (
    KERNEL_TIMEOUT,
    act_on_request,
    active_notebook,
    admin_queue,
    comment_box,
    detail_view,
    env_items,
    my_request,
    open_env,
    output_of,
    queue_outcome,
    refresh,
    request_card,
    request_status,
    run_in_new_cell,
    section,
    sidebar,
    sidebar_tab,
    stat,
    usage_by_env,
    usage_cells,
    usage_row,
    wait_kernel_idle,
    withdraw_dialog,
)
from .server import LabServer
from .site import DRIFTED, GIT_REMOTE, IN_SYNC, OVERLAY, UiSite

pytestmark = pytest.mark.ui

ENV_COUNT = 7  # activated, broken-json, gone, isis4.2.0, isis4.3.0, nokernel, rstats
NEVER_LAUNCHED = ["activated", "broken-json", "gone", "nokernel", "rstats"]
RETIRED = "isis4.1.0"  # launched before the last migration, no longer installed
POLARS_REASON = "Reading Parquet files for the 2025 survey"
ADMIN_COMMENT = "Added to the spec; the rebuilt env is published on Monday."
PYARROW_REASON = "Arrow tables for the calibration pipeline"
H5PY_REASON = "Reading the HDF5 cubes from the 2019 mission"
REJECT_COMMENT = "isis already reads HDF5 cubes: use isis.io.read_cube instead of h5py."
NETCDF_REASON = "Exporting the mosaics as NetCDF for the climate group"
APPROVE_COMMENT = "Approved; it goes into the next rebuild."
DONE_COMMENT = "Published: isis4.2.0 now has netcdf4."
ZARR_REASON = "Chunked arrays for the new mosaics"
XARRAY_REASON = "Labelled arrays for the mosaics"
XARRAY_COMMENT = "isis4.3.0 ships xarray already: use that environment."


@pytest.fixture(scope="module")
def sessions(browser: Browser) -> Iterator[dict[str, Session]]:
    """The users' browser sessions, by name; their step timings are written at the end."""
    opened: dict[str, Session] = {}
    yield opened
    timings = {name: s.timings for name, s in opened.items()}
    (artifacts() / "timings.json").write_text(json.dumps(timings, indent=2))
    for name, session in opened.items():
        for step, seconds in session.timings.items():
            print(f"[ui timing] {name}: {step}: {seconds:.2f} s")


def session_of(sessions: dict[str, Session], browser: Browser, lab: LabServer, user: str) -> Session:
    if user not in sessions:
        sessions[user] = browser.session(user, lab.lab_url(user))
    return sessions[user]


@pytest.fixture(scope="module")
def alice(sessions: dict[str, Session], browser: Browser, lab: LabServer) -> Session:
    return session_of(sessions, browser, lab, "alice")


@pytest.fixture(scope="module")
def bob(sessions: dict[str, Session], browser: Browser, lab: LabServer) -> Session:
    return session_of(sessions, browser, lab, "bob")


@pytest.fixture(scope="module")
def admin(sessions: dict[str, Session], browser: Browser, lab: LabServer) -> Session:
    return session_of(sessions, browser, lab, "admin")


@pytest.fixture(scope="module")
def story() -> dict[str, Any]:
    """What one step leaves for the next (the request ids filed)."""
    return {}


def assert_clean_console(*sessions: Session, expected: re.Pattern[str] | None = None) -> None:
    """No console errors, except those matching ``expected`` (each call site says why)."""
    for session in sessions:
        errors = [e for e in session.console_errors if expected is None or not expected.search(e)]
        session.console_errors.clear()
        assert errors == [], f"{session.user}'s browser console showed errors: {errors}"


def requests_as(lab: LabServer, user: str, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    body = lab.api(f"envshare/api/requests?{query}", user)
    assert isinstance(body, dict)
    return list(body["requests"])


def request_as(lab: LabServer, user: str, request_id: int) -> dict[str, Any]:
    """One request as the server has it, asked as ``user``."""
    body = lab.api(f"envshare/api/requests/{request_id}", user)
    assert isinstance(body, dict)
    return dict(body["request"])


def file_request(lab: LabServer, user: str, env: str, specs: list[str], reason: str) -> int:
    """File a new request as ``user`` through the API; its id."""
    body = lab.api(
        "envshare/api/requests", user, method="POST", body={"env": env, "specs": specs, "reason": reason}
    )
    assert isinstance(body, dict)
    assert body["created"] is True, f"expected a new request, not support for an open one: {body}"
    return int(body["request"]["id"])


def act_as(lab: LabServer, user: str, request_id: int, action: str, comment: str = "") -> dict[str, Any]:
    """Act on a request as ``user`` through the API; the request afterwards."""
    body = lab.api(
        f"envshare/api/requests/{request_id}",
        user,
        method="PATCH",
        body={"action": action, "comment": comment},
    )
    assert isinstance(body, dict)
    return dict(body["request"])


def kernel_name(lab: LabServer, env: str) -> str:
    """The kernelspec name of an environment's (only) kernel, as the server lists it."""
    detail = lab.api(f"envshare/api/envs/{env}", "admin")
    assert isinstance(detail, dict)
    return str(detail["kernels"][0]["name"])


def spool_launch(lab: LabServer, env: str, days_ago: float) -> None:
    """File a launch of ``env``'s python3 kernel ``days_ago`` days back, as the provisioner files
    every launch: an event in the server's spool, which the server takes in when usage is asked for."""
    at = datetime.now(timezone.utc) - timedelta(days=days_ago)
    event = make_event(
        "launch", "alice", env=env, kernel="python3", time=at.isoformat(timespec="milliseconds")
    )
    append_event(str(lab.spool_dir), event)


def changes(request: dict[str, Any]) -> list[tuple[str, str | None, str, str]]:
    """A request's history as (actor, from, to, comment), oldest first."""
    return [(h["actor"], h["from_status"], h["to_status"], h["comment"]) for h in request["history"]]


def test_labextension_is_installed_enabled_and_ok() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    line = next((ln for ln in listing.splitlines() if "jupyter-envshare" in ln), "")
    assert "enabled" in line, listing
    assert "OK" in line, listing


def test_list_shows_statuses_and_filters(alice: Session) -> None:
    page = alice.page
    # When alice opens the sidebar
    with alice.timed("open sidebar and list"):
        panel = sidebar(page)
        expect(env_items(page)).to_have_count(ENV_COUNT)
    # Then every environment has a status badge in words, and a package count
    badges = {
        "isis4.3.0": "In sync",
        "isis4.2.0": "Drifted",
        "rstats": "Unlocked",
        "gone": "Unavailable",
    }
    for env, label in badges.items():
        item = panel.locator(f".jp-envshare-EnvItem[data-env='{env}']")
        expect(item.locator(".jp-envshare-Badge")).to_contain_text(label)
    expect(panel.locator(".jp-envshare-EnvItem[data-env='isis4.3.0']")).to_contain_text("5 packages")
    expect(panel).to_contain_text("Signed in as alice")
    alice.shot("01-list")

    # When she filters by text
    search = panel.get_by_role("searchbox", name="Filter environments by name or path")
    search.fill("isis")
    expect(env_items(page)).to_have_count(2)
    expect(panel).to_contain_text(f"2 of {ENV_COUNT} environments match")
    alice.shot("02-filter-text")

    # and by status (from the keyboard: Tab from the search box reaches the status filter)
    search.focus()
    page.keyboard.press("Tab")
    status = panel.get_by_role("combobox", name="Filter environments by status")
    expect(status).to_be_focused()
    status.select_option("drifted")
    expect(env_items(page)).to_have_count(1)
    expect(env_items(page).first).to_have_attribute("data-env", DRIFTED)
    alice.shot("03-filter-drifted")

    search.fill("")
    status.select_option("unavailable")
    expect(env_items(page)).to_have_count(1)
    expect(env_items(page).first).to_have_attribute("data-env", "gone")
    expect(env_items(page).first).to_contain_text("1 problem")
    alice.shot("04-filter-unavailable")

    status.select_option("")
    expect(env_items(page)).to_have_count(ENV_COUNT)

    # The view tabs follow the WAI-ARIA pattern: arrow keys move between them
    environments = panel.get_by_role("tab", name="Environments")
    environments.focus()
    page.keyboard.press("ArrowRight")
    requests_tab = panel.get_by_role("tab", name="Requests")
    expect(requests_tab).to_be_focused()
    expect(requests_tab).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowLeft")
    expect(environments).to_be_focused()
    expect(env_items(page)).to_have_count(ENV_COUNT)
    assert_clean_console(alice)


def test_detail_of_an_in_sync_environment(alice: Session, ui_site: UiSite) -> None:
    page = alice.page
    # When alice opens isis4.3.0 from the keyboard
    sidebar_tab(page, "Environments")
    item = sidebar(page).locator(f".jp-envshare-EnvItem[data-env='{IN_SYNC}']").get_by_role("button")
    item.focus()
    with alice.timed("open detail (in sync)"):
        page.keyboard.press("Enter")
        detail = detail_view(page, IN_SYNC)
        expect(section(detail, "Drift")).to_contain_text("No drift", timeout=30_000)
    # Then it is in sync, with its provenance linked to the spec's commit
    expect(detail.locator(".jp-envshare-Detail-title .jp-envshare-Badge")).to_contain_text("In sync")
    provenance = section(detail, "Provenance")
    commit = provenance.get_by_role("link")
    expect(commit).to_have_attribute("href", f"{GIT_REMOTE.removesuffix('.git')}/commit/{ui_site.commit}")
    expect(provenance).to_contain_text("conda-lock")
    expect(provenance).to_contain_text("environment.yml")
    expect(provenance).to_contain_text("isis ==4.3.0")
    # its history, newest first: the kernel was added in a second transaction
    history = section(detail, "History").locator(".jp-envshare-Timeline-item")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("envshare-kernel-python")
    # and its packages, searchable
    packages = section(detail, "Packages")
    expect(packages.locator("tbody tr")).to_have_count(5)
    alice.shot("05-detail-in-sync")
    packages.get_by_role("searchbox").fill("marker")
    expect(packages.locator("tbody tr")).to_have_count(1)
    expect(packages.locator("tbody tr")).to_contain_text("isis_marker")
    packages.get_by_role("searchbox").fill("")

    # When she runs a deep check, a busy indicator shows until the answer comes
    drift = section(detail, "Drift")
    held: list[Route] = []
    # makeRequest appends a cache-busting `&<timestamp>` to GET URLs.
    deep_check = re.compile(r".*/envshare/api/envs/[^/]+/drift\?deep=1(&.*)?$")
    page.route(deep_check, lambda route: held.append(route))
    try:
        drift.get_by_role("button", name="Deep check").click()
        expect(drift.locator(".jp-envshare-Busy")).to_contain_text("Checking every file")
        expect(drift.get_by_role("button", name="Deep check")).to_be_disabled()
        drift.scroll_into_view_if_needed()
        alice.shot("06-deep-check-busy")
        assert len(held) == 1
        held[0].continue_()
    finally:
        page.unroute(deep_check)
    expect(drift).to_contain_text("deep check (file hashes)")
    expect(drift).to_contain_text("No drift")
    alice.shot("07-deep-check-done")
    assert_clean_console(alice)


def test_detail_of_a_drifted_environment(alice: Session) -> None:
    page = alice.page
    with alice.timed("open detail (drifted)"):
        detail = open_env(page, DRIFTED)
        drift = section(detail, "Drift")
        overlay = drift.locator(".jp-envshare-DriftGroup[data-kind='pip-overlay']")
        expect(overlay).to_contain_text(OVERLAY, timeout=30_000)
    expect(detail.locator(".jp-envshare-Detail-title .jp-envshare-Badge")).to_contain_text("Drifted")
    expect(overlay.locator("summary")).to_contain_text("Installed by pip over the environment")
    expect(overlay.locator("summary .jp-envshare-Count")).to_have_text("1")
    packages = section(detail, "Packages")
    packages.get_by_role("combobox", name="Show packages installed by").select_option("pypi")
    expect(packages.locator("tbody tr")).to_have_count(1)
    expect(packages.locator("tbody tr")).to_contain_text(OVERLAY)
    expect(packages.locator("tbody tr")).to_contain_text("pip")
    alice.shot("08-detail-drifted")
    assert_clean_console(alice)


def test_new_notebook_on_a_shared_kernel(alice: Session, ui_site: UiSite) -> None:
    page = alice.page
    detail = open_env(page, IN_SYNC)
    # When alice clicks "New notebook" on the environment's kernel
    with alice.timed("new notebook until kernel idle"):
        detail.get_by_role("button", name=f"New notebook with Python 3 [shared: {IN_SYNC}]").click()
        wait_kernel_idle(page)
    expect(active_notebook(page).locator(".jp-KernelName")).to_contain_text(IN_SYNC)
    # Then code runs in the shared environment
    with alice.timed("run a cell"):
        cell = run_in_new_cell(page, "import sys; print(sys.prefix)")
        expect(output_of(cell)).to_contain_text(f"envs/{IN_SYNC}", timeout=KERNEL_TIMEOUT)
    printed = output_of(cell).inner_text().strip()
    prefix = ui_site.prefix(IN_SYNC)
    assert printed in {str(prefix), str(ui_site.inst.current_envs_dir / IN_SYNC)}
    alice.shot("09-notebook-shared-kernel")
    assert_clean_console(alice)


def test_guard_advice_files_a_request(alice: Session, lab: LabServer, story: dict[str, Any]) -> None:
    page = alice.page
    # When alice tries to install into the shared environment
    with alice.timed("guard advice rendered"):
        cell = run_in_new_cell(page, "%pip install polars")
        advice = cell.get_by_role("note", name=re.compile("is a shared, read-only environment"))
        expect(advice).to_be_visible(timeout=KERNEL_TIMEOUT)
    # Then the advice names the environment, the package and who manages it
    expect(advice).to_contain_text(IN_SYNC)
    expect(advice).to_contain_text("was stopped; nothing was changed")
    expect(advice.locator(".jp-envshare-Spec")).to_have_text(["polars"])
    alice.element_shot(advice, "10-advice")

    # When she asks for it with a reason (Enter submits)
    advice.get_by_role("button", name=f"Request polars in {IN_SYNC}").click()
    reason = advice.get_by_role("textbox", name="Why do you need polars?")
    expect(reason).to_be_focused()
    page.keyboard.type(POLARS_REASON)
    alice.element_shot(advice, "11-advice-reason")
    with alice.timed("file request from advice"):
        page.keyboard.press("Enter")
        status = advice.locator(".jp-envshare-Advice-status")
        expect(status).to_contain_text(re.compile(r"Requested #\d+ — open, 1 person needs this"))
    alice.element_shot(advice, "12-advice-requested")
    alice.shot("13-advice-in-notebook")
    request_id = int(re.search(r"#(\d+)", status.inner_text()).group(1))  # type: ignore[union-attr]
    story["polars"] = request_id

    # And the server has exactly that request from alice
    filed = [r for r in requests_as(lab, "admin") if r["id"] == request_id]
    assert len(filed) == 1
    assert filed[0]["env"] == IN_SYNC
    assert filed[0]["specs"] == ["polars"]
    assert filed[0]["requester"] == "alice"
    assert filed[0]["reason"] == POLARS_REASON
    assert_clean_console(alice)


def test_request_form_shows_server_validation_inline(
    alice: Session, lab: LabServer, story: dict[str, Any]
) -> None:
    page = alice.page
    tab = sidebar_tab(page, "Requests")
    tab.get_by_role("combobox", name="Environment").select_option(IN_SYNC)
    # The open request on that environment is listed, as alice's own
    open_requests = tab.locator(".jp-envshare-OpenRequests")
    polars = open_requests.locator(f"[data-request-id='{story['polars']}']")
    expect(polars).to_contain_text("You asked for this.")

    # When she submits a spec the server rejects
    spec = tab.get_by_role("textbox", name="Package 1 (conda spec)")
    spec.fill("scipy >>=1")
    tab.get_by_role("textbox", name="Why do you need it?").fill("Sparse solvers for the mesh code")
    tab.get_by_role("textbox", name="Why do you need it?").press("Enter")
    # Then the server's message shows under that spec, and the spec is marked invalid
    expect(spec).to_have_attribute("aria-invalid", "true")
    field_error = tab.locator(".jp-envshare-SpecRow .jp-envshare-FieldError")
    expect(field_error).to_contain_text("is not a valid conda package spec")
    alice.shot("14-form-validation-error")

    # When she corrects it, adds a second package and presses Enter there
    spec.fill("scipy >=1.11")
    tab.get_by_role("button", name="+ Add another package").click()
    second = tab.get_by_role("textbox", name="Package 2 (conda spec)")
    expect(second).to_be_focused()
    page.keyboard.type("numba")
    page.keyboard.press("Enter")
    # Then the request is filed
    outcome = tab.locator(".jp-envshare-Form .jp-envshare-Success")
    expect(outcome).to_contain_text(re.compile(r"Requested #\d+ — open, 1 person needs this"))
    story["scipy"] = int(re.search(r"#(\d+)", outcome.inner_text()).group(1))  # type: ignore[union-attr]
    mine = tab.locator(".jp-envshare-MyRequests .jp-envshare-RequestCard")
    expect(mine).to_have_count(2)
    alice.shot("15-form-filed")
    filed = [r for r in requests_as(lab, "alice", mine="1") if r["id"] == story["scipy"]]
    assert filed[0]["specs"] == ["scipy >=1.11", "numba"]
    # Chromium reports every 4xx answer in the console: the 400 for the invalid spec is the
    # validation this test provokes, and the only error allowed.
    assert_clean_console(alice, expected=re.compile(r"status of 400 .*/envshare/api/requests\?"))


def test_another_user_supports_and_folds_into_open_requests(bob: Session, story: dict[str, Any]) -> None:
    page = bob.page
    tab = sidebar_tab(page, "Requests")
    tab.get_by_role("combobox", name="Environment").select_option(IN_SYNC)
    scipy = tab.locator(f".jp-envshare-OpenRequests [data-request-id='{story['scipy']}']")
    # When bob says he needs scipy too
    with bob.timed("+1 an open request"):
        scipy.get_by_role("button", name=re.compile(r"^\+1: I need scipy")).click()
        expect(scipy).to_contain_text("2 people need this")
    expect(scipy).to_contain_text("You support this request.")
    # and asks for polars again through the form
    tab.get_by_role("textbox", name="Package 1 (conda spec)").fill("polars")
    reason = tab.get_by_role("textbox", name="Why do you need it?")
    reason.fill("Same Parquet files, other survey")
    reason.press("Enter")
    # Then it folds into alice's open request instead of a duplicate
    outcome = tab.locator(".jp-envshare-Form .jp-envshare-Success")
    expect(outcome).to_contain_text(
        f"alice already asked for this: #{story['polars']} — open, 2 people need this"
    )
    bob.shot("16-bob-supports")
    assert_clean_console(bob)


def test_admin_approves_from_the_queue(admin: Session, story: dict[str, Any]) -> None:
    page = admin.page
    with admin.timed("open queue"):
        queue = admin_queue(page)
        cards = queue.locator(".jp-envshare-RequestCard")
        expect(cards).to_have_count(2)
    expect(sidebar(page)).to_contain_text("Signed in as admin (admin)")
    expect(sidebar(page).get_by_role("tab", name=re.compile("Queue"))).to_contain_text("2")
    # Sorted by demand: people first, then intercepted attempts (polars was tried in a notebook)
    expect(cards.first).to_have_attribute("data-request-id", str(story["polars"]))
    admin.shot("17-admin-queue")

    polars = queue.locator(f"[data-request-id='{story['polars']}']")
    polars.get_by_role("textbox", name="Comment for the requester (optional)").fill(ADMIN_COMMENT)
    with admin.timed("approve"):
        polars.get_by_role("button", name=f"Approve request #{story['polars']}").click()
        expect(polars.locator(".jp-envshare-RequestBadge-approved")).to_have_text("Approved")
    expect(polars).to_contain_text(ADMIN_COMMENT)
    # The queue says so; the card stays in this view, and keeps the focus its button had
    expect(queue_outcome(queue)).to_contain_text(f"#{story['polars']} is now approved.")
    expect(queue_outcome(queue)).not_to_contain_text("listed under")
    expect(polars).to_be_focused()

    # The spec patch adds polars to the environment.yml, ready to copy
    polars.get_by_text("Spec patch (environment.yml)").click()
    diff = polars.locator(".jp-envshare-Diff")
    expect(diff).to_contain_text("+  - polars")
    polars.get_by_role("button", name=f"Copy the spec patch of request #{story['polars']}").click()
    expect(polars.locator(".jp-envshare-Copy-status")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "+  - polars" in copied
    assert copied.startswith("--- a/environment.yml")
    polars.scroll_into_view_if_needed()
    admin.shot("18-admin-approved-patch")
    assert_clean_console(admin)


def test_admin_sees_usage(admin: Session, lab: LabServer) -> None:
    page = admin.page
    detail = open_env(page, IN_SYNC)
    usage = section(detail, "Usage (admins)")
    with admin.timed("usage loaded"):
        expect(usage.get_by_role("img", name=re.compile("Launches per kernel"))).to_be_visible()
    # alice's notebook launched the kernel once; its bar is labelled with the kernelspec name
    expect(stat(usage, "Launches")).to_have_text("1")
    kernel = re.escape(kernel_name(lab, IN_SYNC))
    expect(usage.get_by_role("img", name=re.compile(rf"{kernel}: 1 launches by 1 users"))).to_be_visible()
    expect(usage.locator(".jp-envshare-Chart-label")).to_have_text(re.compile(rf"^{kernel}$"))
    # and distinct users are counted over the environment, exactly (no lower bound)
    expect(stat(usage, "Distinct users")).to_have_text("1")
    expect(usage.get_by_role("table", name="Packages users tried to install")).to_contain_text("polars")
    usage.scroll_into_view_if_needed()
    admin.shot("19-admin-usage")
    assert_clean_console(admin)


def test_admin_sees_environments_by_last_use(admin: Session, alice: Session, lab: LabServer) -> None:
    page = admin.page
    # Given the drifted environment launched twice some weeks ago, and one launched long ago that
    # the last migration retired (alice's notebook launched the in-sync one above)
    spool_launch(lab, DRIFTED, days_ago=25)
    spool_launch(lab, DRIFTED, days_ago=20)
    spool_launch(lab, RETIRED, days_ago=200)

    # When the admin opens the Usage view
    with admin.timed("usage by environment loaded"):
        rows = usage_by_env(page)
        expect(rows).to_have_count(ENV_COUNT + 1)
    # Then it says what it is for,
    view = sidebar(page).get_by_role("tabpanel")
    expect(view).to_contain_text("candidates to retire at the next migration")
    expect(view).to_contain_text("8 environments, least recently used first")
    # and lists every environment, never launched ones first, then the least recently used
    order = [*NEVER_LAUNCHED, RETIRED, DRIFTED, IN_SYNC]
    expect(rows.locator(".jp-envshare-UsageTable-name")).to_have_text(order)
    body = lab.api("envshare/api/usage", "admin")
    assert isinstance(body, dict)
    assert [e["env"] for e in body["envs"]] == order
    for env in NEVER_LAUNCHED:
        expect(usage_cells(usage_row(page, env))).to_have_text(["0", "0", "never"])
    # the launched ones with their launches, distinct users and last use
    expect(usage_cells(usage_row(page, IN_SYNC))).to_have_text(
        ["1", "1", re.compile("just now|minutes? ago")]
    )
    expect(usage_cells(usage_row(page, DRIFTED))).to_have_text(["2", "1", "20 days ago"])
    # and the retired one marked as no longer installed, with nothing to open
    retired = usage_row(page, RETIRED)
    expect(retired).to_contain_text("Not installed")
    expect(retired.get_by_role("button")).to_have_count(0)
    expect(usage_cells(retired).nth(0)).to_have_text("1")
    expect(usage_cells(retired).nth(2)).not_to_have_text("never")
    # all in the width of the sidebar, which hides what overflows
    fits = "el => el.scrollWidth <= el.clientWidth"
    assert sidebar(page).evaluate(fits), "the usage table is wider than the sidebar"
    admin.shot("42-usage-by-last-use")

    # When the admin keeps those not used for 90 days
    rows = usage_by_env(page, "90 days")
    # Then the recently used ones are left out
    idle = [*NEVER_LAUNCHED, RETIRED]
    expect(rows.locator(".jp-envshare-UsageTable-name")).to_have_text(idle)
    expect(view).to_contain_text("6 of 8 environments not used for 90 days")
    admin.shot("43-usage-not-used-for-90-days")

    # When the usage cannot be loaded (the request service answers 503, simulated in the browser:
    # a TEST DOUBLE for an outage this machine cannot cause mid-test), the view says so and keeps
    # the table it has
    usage_api = re.compile(r".*/envshare/api/usage(\?.*)?$")
    outage = {"code": 503, "message": "The request service is unavailable right now (database is down)."}
    page.route(usage_api, lambda route: route.fulfill(status=503, json=outage))
    try:
        refresh(page)
        alert = view.get_by_role("alert")
        expect(alert).to_contain_text("Requests are unavailable right now; kernels keep working")
    finally:
        page.unroute(usage_api)
    expect(rows.locator(".jp-envshare-UsageTable-name")).to_have_text(idle)
    # and "Try again" loads it once the service is back
    alert.get_by_role("button", name="Try again").click()
    expect(alert).to_have_count(0)

    # When the admin opens the drifted environment from the view, from the keyboard
    usage_by_env(page)
    usage_row(page, DRIFTED).get_by_role("button", name=f"Open {DRIFTED}").focus()
    page.keyboard.press("Enter")
    # Then its detail shows the same figures, its bar labelled with its kernelspec name
    usage = section(detail_view(page, DRIFTED), "Usage (admins)")
    expect(stat(usage, "Launches")).to_have_text("2")
    expect(stat(usage, "Distinct users")).to_have_text("1")
    kernel = re.escape(kernel_name(lab, DRIFTED))
    expect(usage.get_by_role("img", name=re.compile(rf"{kernel}: 2 launches"))).to_be_visible()
    usage.scroll_into_view_if_needed()
    admin.shot("44-usage-detail-drifted")

    # And alice, who is no admin, has no Usage view, and the server refuses her usage
    panel = sidebar(alice.page)
    expect(panel.get_by_role("tab")).to_have_text(["Environments", "Requests"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        lab.api("envshare/api/usage", "alice")
    error = refused.value
    message = json.loads(error.read())["message"]
    error.close()
    assert error.code == 403
    assert message == "Only admins can see usage."
    # The only console error is Chromium's report of the simulated outage.
    assert_clean_console(
        admin, alice, expected=re.compile(r"Failed to load resource: .*503.*envshare/api/usage")
    )


def test_requester_sees_the_new_status(alice: Session, story: dict[str, Any]) -> None:
    page = alice.page
    # In the notebook, the advice checks its request's status in place
    notebook = active_notebook(page)
    page.get_by_role("tab", name=re.compile(r"Untitled.*\.ipynb")).first.click()
    advice = notebook.get_by_role("note", name=re.compile("is a shared, read-only environment"))
    advice.get_by_role("button", name="Check status").click()
    expect(advice.locator(".jp-envshare-Advice-status")).to_contain_text(
        f"#{story['polars']} — approved, 2 people need this"
    )
    expect(advice).to_contain_text(ADMIN_COMMENT)
    alice.element_shot(advice, "20-advice-approved")

    # and the sidebar's "My requests" shows it after a refresh
    refresh(page)
    card = my_request(page, story["polars"])
    expect(request_status(card)).to_have_text("Approved")
    expect(card).to_contain_text(f"Comment from admin: {ADMIN_COMMENT}")
    card.scroll_into_view_if_needed()
    alice.shot("21-my-requests-approved")
    assert_clean_console(alice)


def test_requester_withdraws_an_open_request(bob: Session, lab: LabServer) -> None:
    page = bob.page
    # Given an open request of bob's
    request_id = file_request(lab, "bob", DRIFTED, ["pyarrow >=15"], PYARROW_REASON)
    refresh(page)
    card = my_request(page, request_id)
    expect(request_status(card)).to_have_text("Open")
    expect(card).to_contain_text(PYARROW_REASON)
    # listed among the open requests on its environment, as his
    tab = sidebar_tab(page, "Requests")
    tab.get_by_role("combobox", name="Environment").select_option(DRIFTED)
    listed = request_card(tab.locator(".jp-envshare-OpenRequests"), request_id)
    expect(listed).to_contain_text("You asked for this.")
    card.scroll_into_view_if_needed()
    bob.shot("30-my-request-open")

    # When he clicks "Withdraw" in "My requests", he is asked first, since it cannot be undone
    withdraw = card.get_by_role("button", name=f"Withdraw request #{request_id}", exact=True)
    withdraw.click()
    dialog = withdraw_dialog(page, request_id)
    expect(dialog).to_contain_text(
        f"pyarrow >=15 in {DRIFTED} will no longer be asked for. This cannot be undone."
    )
    expect(dialog).not_to_contain_text("support")
    # and "Keep it" is the default (focused, so Enter keeps it too)
    keep = dialog.get_by_role("button", name="Keep it")
    expect(keep).to_be_focused()
    bob.shot("31-withdraw-confirm")
    # Then declining keeps the request open, on screen and on the server
    keep.click()
    expect(dialog).to_have_count(0)
    expect(request_status(card)).to_have_text("Open")
    expect(withdraw).to_be_focused()
    assert request_as(lab, "bob", request_id)["status"] == "open"

    # Given alice needs it too
    act_as(lab, "alice", request_id, "support")
    refresh(page)
    expect(card).to_contain_text("2 people need this")
    # When he withdraws it all the same, the dialog says it is withdrawn for alice too
    withdraw.click()
    expect(dialog).to_contain_text(
        "This cannot be undone. 1 other person supports it (alice): it will be withdrawn for them too."
    )
    bob.shot("32-withdraw-confirm-supported")
    with bob.timed("withdraw a request"):
        dialog.get_by_role("button", name="Withdraw", exact=True).click()
        expect(request_status(card)).to_have_text("Withdrawn")
    expect(dialog).to_have_count(0)
    # and the focus, whose button is gone, is left on the card
    expect(card).to_be_focused()
    # Then it stays in his list as withdrawn, with nothing left to do on it,
    expect(withdraw).to_have_count(0)
    expect(card.get_by_role("button")).to_have_count(0)
    # and it is no longer an open request on the environment
    expect(listed).to_have_count(0)
    card.scroll_into_view_if_needed()
    bob.shot("33-my-request-withdrawn")

    # And the server has it withdrawn by bob, without an admin comment
    withdrawn = request_as(lab, "bob", request_id)
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["admin_comment"] == ""
    assert changes(withdrawn) == [("bob", None, "open", ""), ("bob", "open", "withdrawn", "")]
    assert request_id not in [r["id"] for r in requests_as(lab, "admin", status="open")]
    assert_clean_console(bob)


def test_admin_rejects_a_request_with_a_comment(admin: Session, bob: Session, lab: LabServer) -> None:
    page = admin.page
    # Given an open request of bob's in the admin's queue
    request_id = file_request(lab, "bob", DRIFTED, ["h5py"], H5PY_REASON)
    refresh(page)
    queue = admin_queue(page)
    card = request_card(queue, request_id)
    expect(request_status(card)).to_have_text("Open")
    expect(card).to_contain_text(H5PY_REASON)

    # When the admin types why and presses Enter in the comment box
    comment = comment_box(card)
    comment.press_sequentially(REJECT_COMMENT)
    comment.press("Enter")
    # Then Enter is a new line, not a decision: nothing was approved
    expect(comment).to_have_value(REJECT_COMMENT + "\n")
    expect(card.get_by_role("button", name=f"Approve request #{request_id}", exact=True)).to_be_enabled()
    expect(queue_outcome(queue)).to_have_text("")
    assert request_as(lab, "bob", request_id)["status"] == "open"
    admin.shot("34-queue-comment-typed")

    # When the admin clicks "Reject"
    with admin.timed("reject a request"):
        act_on_request(card, request_id, "Reject")
        # Then it leaves the queue of open or approved requests
        expect(card).to_have_count(0)
    # and the queue says what became of it and where it went, with the focus there
    outcome = queue_outcome(queue)
    expect(outcome).to_contain_text(f"#{request_id} is now rejected. It is listed under Rejected.")
    expect(queue.locator(".jp-envshare-QueueOutcome")).to_be_focused()
    admin.shot("35-queue-after-reject")
    # and "Show rejected requests" shows it rejected, with the comment and nothing left to do on it
    queue.get_by_role("button", name="Show rejected requests").click()
    expect(queue.get_by_role("combobox", name="Show")).to_have_value("rejected")
    expect(outcome).to_have_text("")
    expect(request_status(card)).to_have_text("Rejected")
    expect(card).to_contain_text(f"Comment from admin: {REJECT_COMMENT}")
    expect(card.get_by_role("textbox")).to_have_count(0)
    expect(card.get_by_role("button")).to_have_count(0)
    expect(card.get_by_text("Spec patch (environment.yml)")).to_have_count(0)
    card.scroll_into_view_if_needed()
    admin.shot("36-queue-rejected")

    # And the server recorded the admin's decision and comment (trimmed), and no approval before it
    rejected = request_as(lab, "bob", request_id)
    assert rejected["status"] == "rejected"
    assert rejected["admin_comment"] == REJECT_COMMENT
    assert changes(rejected) == [("bob", None, "open", ""), ("admin", "open", "rejected", REJECT_COMMENT)]

    # And bob reads the decision and its reason in "My requests", and can no longer withdraw it
    refresh(bob.page)
    mine = my_request(bob.page, request_id)
    expect(request_status(mine)).to_have_text("Rejected")
    expect(mine).to_contain_text(f"Comment from admin: {REJECT_COMMENT}")
    expect(mine.get_by_role("button", name=f"Withdraw request #{request_id}")).to_have_count(0)
    mine.scroll_into_view_if_needed()
    bob.shot("37-my-request-rejected")
    admin_queue(page)  # back to the queue's default view
    assert_clean_console(admin, bob)


def test_admin_marks_an_approved_request_done(admin: Session, lab: LabServer) -> None:
    page = admin.page
    # Given a request of bob's that the admin approved earlier
    request_id = file_request(lab, "bob", DRIFTED, ["netcdf4"], NETCDF_REASON)
    act_as(lab, "admin", request_id, "approve", APPROVE_COMMENT)
    refresh(page)
    queue = admin_queue(page)
    card = request_card(queue, request_id)
    expect(request_status(card)).to_have_text("Approved")
    expect(card).to_contain_text(f"Comment from admin: {APPROVE_COMMENT}")
    # An approved request can still be rejected; marking it done is the first action
    expect(card.get_by_role("button", name=f"Reject request #{request_id}", exact=True)).to_be_enabled()
    expect(card.get_by_role("button").first).to_have_accessible_name(f"Mark done request #{request_id}")
    # which Enter in the comment box does not trigger
    comment_box(card).press_sequentially(DONE_COMMENT)
    comment_box(card).press("Enter")
    expect(comment_box(card)).to_have_value(DONE_COMMENT + "\n")
    assert request_as(lab, "bob", request_id)["status"] == "approved"
    card.scroll_into_view_if_needed()
    admin.shot("38-queue-approved")

    # When the admin, having said where it is published, clicks "Mark done"
    with admin.timed("mark a request done"):
        act_on_request(card, request_id, "Mark done")
        # Then it leaves the queue of open or approved requests
        expect(card).to_have_count(0)
    # and the queue says so
    expect(queue_outcome(queue)).to_contain_text(f"#{request_id} is now done. It is listed under Done.")
    expect(queue.get_by_role("button", name="Show done requests")).to_be_visible()
    admin.shot("39-queue-after-done")
    # and the "Done" view shows it done, with the new comment and nothing left to decide
    card = request_card(admin_queue(page, "Done"), request_id)
    expect(request_status(card)).to_have_text("Done")
    expect(card).to_contain_text(f"Comment from admin: {DONE_COMMENT}")
    expect(card).not_to_contain_text(APPROVE_COMMENT)
    expect(card.get_by_role("textbox")).to_have_count(0)
    expect(card.get_by_role("button", name=re.compile(rf"request #{request_id}$"))).to_have_count(0)
    # while the spec patch that was applied stays readable
    card.get_by_text("Spec patch (environment.yml)").click()
    expect(card.locator(".jp-envshare-Diff")).to_contain_text("+  - netcdf4")
    card.scroll_into_view_if_needed()
    admin.shot("40-queue-done")

    # And the server has the whole history: filed by bob, approved, then done by the admin
    finished = request_as(lab, "bob", request_id)
    assert finished["status"] == "done"
    assert finished["admin_comment"] == DONE_COMMENT
    assert changes(finished) == [
        ("bob", None, "open", ""),
        ("admin", "open", "approved", APPROVE_COMMENT),
        ("admin", "approved", "done", DONE_COMMENT),
    ]
    admin_queue(page)  # back to the queue's default view
    assert_clean_console(admin)


def test_admin_sees_why_an_action_failed_after_the_card_left(admin: Session, lab: LabServer) -> None:
    page = admin.page
    # Given an open request in the admin's queue
    request_id = file_request(lab, "bob", DRIFTED, ["zarr"], ZARR_REASON)
    refresh(page)
    queue = admin_queue(page)
    card = request_card(queue, request_id)
    expect(request_status(card)).to_have_text("Open")
    # that is rejected meanwhile, as from another browser tab (this one has not refreshed yet)
    act_as(lab, "admin", request_id, "reject", "Duplicate of the xarray request.")
    expect(request_status(card)).to_have_text("Open")

    # When the admin approves it from the stale card
    act_on_request(card, request_id, "Approve")
    # Then the server's refusal is shown above the list, and stays once the queue reloads and
    # the rejected request leaves the view
    failure = queue.locator(".jp-envshare-QueueOutcome").get_by_role("alert")
    expect(failure).to_contain_text(f"Request #{request_id} is rejected; it cannot become approved.")
    expect(card).to_have_count(0)
    expect(failure).to_be_visible()
    admin.shot("41-queue-action-refused")
    assert request_as(lab, "bob", request_id)["status"] == "rejected"
    # The only console error is Chromium's report of the refused PATCH.
    assert_clean_console(admin, expected=re.compile(r"Failed to load resource: .*409"))


def test_failures_are_explained(browser: Browser, lab: LabServer) -> None:
    # A server that cannot be reached and a request service that is down, simulated in the
    # browser (Playwright answers those calls in place of the server): a TEST DOUBLE for
    # outages this machine cannot cause on purpose mid-test.
    carol = browser.session("carol", lab.lab_url("carol"))
    page = carol.page
    unavailable = {
        "code": 503,
        "message": "The request service is unavailable right now (database is down). "
        "Kernels keep working; try again later.",
    }
    requests_api = re.compile(r".*/envshare/api/requests.*")
    envs_list = re.compile(r".*/envshare/api/envs(\?[^/]*)?$")
    page.route(requests_api, lambda route: route.fulfill(status=503, json=unavailable))
    page.route(envs_list, lambda route: route.abort("connectionfailed"))
    panel = sidebar(page)
    panel.get_by_role("button", name="Refresh shared environments").click()
    expect(panel.get_by_role("alert").first).to_contain_text("Cannot reach the Jupyter server")
    expect(panel.get_by_role("button", name="Try again").first).to_be_visible()
    carol.shot("22-server-unreachable")
    tab = sidebar_tab(page, "Requests")
    expect(tab.locator(".jp-envshare-MyRequests")).to_contain_text(
        "Requests are unavailable right now; kernels keep working"
    )
    carol.shot("23-requests-unavailable")

    # When the server is back, "Try again" recovers
    page.unroute(envs_list)
    page.unroute(requests_api)
    sidebar_tab(page, "Environments")
    panel.get_by_role("button", name="Try again").first.click()
    expect(env_items(page)).to_have_count(ENV_COUNT)
    expect(panel.get_by_role("alert")).to_have_count(0)
    # The only console errors are Chromium's own reports of the failures simulated above.
    assert carol.console_errors, "the simulated failures should have been reported by Chromium"
    assert_clean_console(
        carol, expected=re.compile(r"Failed to load resource: .*(503|ERR_CONNECTION_FAILED).*envshare/api/")
    )


def test_dark_theme(alice: Session, admin: Session, lab: LabServer) -> None:
    page = alice.page
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=30_000)
    page.wait_for_timeout(500)  # the theme's stylesheet settles
    tab = sidebar_tab(page, "Requests")
    tab.locator(".jp-envshare-MyRequests").scroll_into_view_if_needed()
    alice.shot("24-dark-requests")
    open_env(page, DRIFTED)
    alice.shot("25-dark-detail-drifted")
    page.get_by_role("tab", name=re.compile(r"Untitled.*\.ipynb")).first.click()
    alice.shot("26-dark-notebook-advice")
    admin.page.reload()
    wait_restored(admin.page)
    expect(admin.page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=60_000)
    sidebar_tab(admin.page, "Queue")
    admin.shot("27-dark-queue")
    # The outcome of an admin action, above the queue
    request_id = file_request(lab, "bob", DRIFTED, ["xarray"], XARRAY_REASON)
    refresh(admin.page)
    queue = admin_queue(admin.page)
    act_on_request(request_card(queue, request_id), request_id, "Reject", XARRAY_COMMENT)
    expect(queue_outcome(queue)).to_contain_text(f"#{request_id} is now rejected.")
    admin.shot("28-dark-queue-outcome")
    # The usage by environment, with the retired one marked
    expect(usage_by_env(admin.page)).to_have_count(ENV_COUNT + 1)
    admin.shot("29-dark-usage")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    expect(page.locator("body[data-jp-theme-light='true']")).to_have_count(1, timeout=30_000)
    assert_clean_console(alice, admin)
