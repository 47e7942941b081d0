"""What the browser tests do in JupyterLab, named by what a person does.

Locators prefer roles and accessible names (what a screen reader announces), so the tests also
check that the panel is labelled.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

SIDEBAR_TAB = ".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='jp-envshare-sidebar']"
TIMEOUT = 30_000
KERNEL_TIMEOUT = 120_000


def sidebar(page: Page) -> Locator:
    """The "Shared environments" sidebar, opened if it is not."""
    panel = page.get_by_role("region", name="Shared environments", exact=True)
    if not panel.is_visible():
        page.locator(SIDEBAR_TAB).click()
    panel.wait_for(state="visible", timeout=TIMEOUT)
    return panel


def sidebar_tab(page: Page, name: str) -> Locator:
    """Select a tab of the sidebar (Environments, Requests, Queue, Usage) and return its panel."""
    panel = sidebar(page)
    panel.get_by_role("tab", name=name).click()
    tabpanel = panel.get_by_role("tabpanel")
    tabpanel.wait_for(timeout=TIMEOUT)
    return tabpanel


def refresh(page: Page) -> None:
    """Click the sidebar's refresh button (the panel otherwise polls every 30 s)."""
    sidebar(page).get_by_role("button", name="Refresh shared environments").click()


def request_card(container: Locator, request_id: int) -> Locator:
    """The card of request ``request_id`` in a list of requests."""
    return container.locator(f".jp-envshare-RequestCard[data-request-id='{request_id}']")


def request_status(card: Locator) -> Locator:
    """The status badge of a request card ("Open", "Approved", "Rejected", ...)."""
    return card.locator(".jp-envshare-Badge")


def my_request(page: Page, request_id: int) -> Locator:
    """Request ``request_id`` under "My requests" in the sidebar's Requests tab."""
    tab = sidebar_tab(page, "Requests")
    return request_card(tab.locator(".jp-envshare-MyRequests"), request_id)


def admin_queue(page: Page, show: str = "Open or approved") -> Locator:
    """The admin's Queue tab, showing the requests the "Show" filter names (by its label)."""
    queue = sidebar_tab(page, "Queue")
    # The filter outlives a click on the tab it is already on: set it every time.
    queue.get_by_role("combobox", name="Show").select_option(label=show)
    return queue


def usage_by_env(page: Page, not_used_for: str = "Any") -> Locator:
    """The admin's Usage tab, filtered by "Not used for" (by its label); return its table's rows."""
    usage = sidebar_tab(page, "Usage")
    usage.get_by_role("combobox", name="Not used for").select_option(label=not_used_for)
    return usage.get_by_role("table", name="Environments by last use").locator("tbody tr")


def usage_row(page: Page, env: str) -> Locator:
    """The row of ``env`` in the admin's Usage tab."""
    return sidebar(page).locator(f".jp-envshare-UsageTable tr[data-env='{env}']")


def usage_cells(row: Locator) -> Locator:
    """The cells of a usage row after the environment's name: launches, users, last used."""
    return row.locator("td")


def stat(container: Locator, name: str) -> Locator:
    """The value of a figure ("Launches", "Distinct users", "Last used") in a usage section."""
    return container.locator(".jp-envshare-Stats > div").filter(has_text=name).locator("dd")


def comment_box(card: Locator) -> Locator:
    """The admin's comment for the requester, on a card in the queue."""
    return card.get_by_role("textbox", name="Comment for the requester (optional)")


def act_on_request(card: Locator, request_id: int, action: str, comment: str = "") -> None:
    """As an admin, write ``comment`` for the requester and click ``action`` ("Reject", "Mark done")."""
    if comment:
        comment_box(card).fill(comment)
    card.get_by_role("button", name=f"{action} request #{request_id}", exact=True).click()


def queue_outcome(queue: Locator) -> Locator:
    """The queue's status line: what the admin's last action did, above the list."""
    return queue.locator(".jp-envshare-QueueOutcome").get_by_role("status")


def withdraw_dialog(page: Page, request_id: int) -> Locator:
    """The dialog asking to confirm withdrawing request ``request_id`` (named by its title and text)."""
    return page.get_by_role("dialog", name=re.compile(rf"^Withdraw request #{request_id}\?"))


def env_items(page: Page) -> Locator:
    """The environments listed in the sidebar."""
    return sidebar(page).locator(".jp-envshare-EnvItem")


def open_env(page: Page, env: str) -> Locator:
    """Click an environment in the list; return its detail view (main area)."""
    sidebar_tab(page, "Environments")
    sidebar(page).locator(f".jp-envshare-EnvItem[data-env='{env}']").get_by_role("button").click()
    detail = detail_view(page, env)
    detail.locator(".jp-envshare-Section").first.wait_for(timeout=TIMEOUT)
    return detail


def detail_view(page: Page, env: str) -> Locator:
    """The detail view of ``env`` (a main-area tab panel, labelled by its tab)."""
    return page.locator(f"[id='jp-envshare-env-{env}']")


def section(detail: Locator, title: str) -> Locator:
    """A section of a detail view by its heading."""
    return detail.get_by_role("region", name=title)


def active_notebook(page: Page) -> Locator:
    """The notebook panel in front."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


# The toolbar's indicator says "idle" before a kernel is even connected, so ask the session itself
# (the server config exposes the app as window.jupyterapp).
_KERNEL_READY = """() => {
  const widget = window.jupyterapp.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
    && widget.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def wait_kernel_idle(page: Page, timeout: float = KERNEL_TIMEOUT) -> None:
    """Wait until the front notebook's kernel is connected and idle."""
    page.wait_for_function(_KERNEL_READY, timeout=timeout)


def run_in_new_cell(page: Page, code: str) -> Locator:
    """Type ``code`` into the last cell of the front notebook and run it; return that cell."""
    cells = active_notebook(page).locator(".jp-Notebook .jp-Cell")
    # Pin the index: running the last cell appends a new one, and `.last` would follow it.
    cell = cells.nth(cells.count() - 1)
    cell.locator(".cm-content").click()
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    return cell


def output_of(cell: Locator) -> Locator:
    """The output area of a cell."""
    return cell.locator(".jp-OutputArea-output")
