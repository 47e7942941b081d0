"""A real ``jupyter lab`` for the browser tests: a subprocess on a free loopback port.

The server config is written into the test's tmp dir with a comment on every override, so a person
reading a failed run's files sees exactly how the server differed from a default one.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILT_EXTENSION = REPO / "jupyter_envshare" / "labextension"
EXTENSION_SOURCES = [REPO / "labextension" / "src", REPO / "labextension" / "style"]
START_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_extension_built() -> None:
    """Fail early, with the fix, when the built labextension is missing or older than its sources."""
    built = BUILT_EXTENSION / "package.json"
    if not built.is_file():
        raise RuntimeError(
            f"{built} is missing: build the labextension (pip install -e . at the repository root, "
            "or `cd labextension && jlpm build`)."
        )
    newest = max(p.stat().st_mtime for d in EXTENSION_SOURCES for p in d.rglob("*") if p.is_file())
    if newest > built.stat().st_mtime:
        raise RuntimeError(
            f"The labextension in {BUILT_EXTENSION} is older than its sources: rebuild it "
            "(`cd labextension && jlpm build`) so the browser tests test this code."
        )


CONFIG_TEMPLATE = """\
# jupyter_envshare browser tests: the server Playwright drives (written by tests/ui/server.py).
# Every line below differs from a default server; the comment says why.

# Loopback only, on the free port the test picked; fail instead of moving to another port.
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = {port}
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
# Test machines (containers) often run the suite as root.
c.ServerApp.allow_root = True
# Notebooks the panel creates land in this test's directory.
c.ServerApp.root_dir = {root_dir!r}
# The server's own token (the page config hands it to the browser); users come from the
# identity provider below, through their login cookie.
c.IdentityProvider.token = {token!r}
# `?token=<name>-token` in a page URL logs the browser in as <name> (alice, admin, ...).
c.ServerApp.identity_provider_class = "tests.identity.NamedTokenUsers"
# The extension under test, explicitly (it is also enabled by its drop-in config file).
c.ServerApp.jpserver_extensions = {{"jupyter_envshare": True}}
# The shared installation built for this test with py-rattler.
c.EnvShare.env_roots = [{env_root!r}]
# `admin` works the request queue; alice is an ordinary user.
c.EnvShare.admin_users = ["admin"]
# Requests and usage in a SQLite file of this test, not in the user's data dir.
c.EnvShare.database_url = {database_url!r}
# Launch events and guard events of this test's kernels.
c.EnvShare.spool_dir = {spool_dir!r}
# Background refresh every 2 s so status changes made by the test show up quickly.
c.EnvShare.refresh_interval = 2
# Serve the labextension built from this checkout, ahead of any copy installed in the venv.
c.LabApp.extra_labextensions_path = [{labextensions!r}]
# Lets the test run JupyterLab commands (switching to the dark theme) through window.jupyterapp.
c.LabApp.expose_app_in_browser = True
# No network: no news feed and no update check (their failures would reach the console).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
# The extension manager would search PyPI; a read-only one lists installed extensions only.
c.LabApp.extension_manager = "readonly"
# Settings (e.g. the theme) and workspaces stay in this test's directory.
c.LabApp.user_settings_dir = {settings_dir!r}
c.LabApp.workspaces_dir = {workspaces_dir!r}
"""

# Plugins turned off for the tests, each for a reason that is not about jupyter_envshare.
PAGE_CONFIG = {
    "disabledExtensions": {
        # Asks "receive official Jupyter news?" in a toast over the panel on first start.
        "@jupyterlab/apputils-extension:announcements": True,
    }
}


@dataclass
class LabServer:
    """A running ``jupyter lab``."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    directory: Path
    log_path: Path

    @property
    def spool_dir(self) -> Path:
        """Where this server's kernels file their launch events (``c.EnvShare.spool_dir``)."""
        return spool_dir_of(self.directory)

    @property
    def url(self) -> str:
        """The server's base URL (ends with a slash)."""
        return f"http://127.0.0.1:{self.port}/"

    def lab_url(self, user: str) -> str:
        """JupyterLab's page, logged in as ``user``, in a workspace of that user's own.

        Workspaces belong to the server, not to users: one per user keeps one browser's layout
        (an open sidebar, detail tabs) from being restored into the other's.
        """
        return f"{self.url}lab/workspaces/{user}?token={user}-token"

    def api(self, path: str, user: str, method: str = "GET", body: object | None = None) -> object:
        """Call the server's REST API as ``user`` (JSON in, JSON out)."""
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {user}-token", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def log_tail(self, lines: int = 80) -> str:
        """The end of the server's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM: it shuts its kernels down), killing it if it does not stop."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def spool_dir_of(directory: Path) -> Path:
    """The event spool of the server started in ``directory``."""
    return directory / "runtime" / "envshare"


def start_lab(directory: Path, env_root: Path) -> LabServer:
    """Write the config and start ``jupyter lab`` in ``directory``; return once /api/status answers."""
    check_extension_built()
    port = free_port()
    token = secrets.token_hex(16)
    home = directory / "home"
    names = ("config", "data", "runtime", "settings", "workspaces", "root")
    paths = {name: directory / name for name in names}
    for path in [home, *paths.values()]:
        path.mkdir(parents=True, exist_ok=True)
    labextensions = directory / "labextensions"
    labextensions.mkdir(exist_ok=True)
    (labextensions / "jupyter-envshare").symlink_to(BUILT_EXTENSION, target_is_directory=True)
    (paths["config"] / "labconfig").mkdir()
    (paths["config"] / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG, indent=2))
    config = directory / "jupyter_lab_config.py"
    config.write_text(
        CONFIG_TEMPLATE.format(
            port=port,
            root_dir=str(paths["root"]),
            token=token,
            env_root=str(env_root),
            database_url=f"sqlite:///{directory / 'envshare.sqlite'}",
            spool_dir=str(spool_dir_of(directory)),
            labextensions=str(labextensions),
            settings_dir=str(paths["settings"]),
            workspaces_dir=str(paths["workspaces"]),
        )
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(paths["config"]),
        "JUPYTER_DATA_DIR": str(paths["data"]),
        "JUPYTER_RUNTIME_DIR": str(paths["runtime"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        # tests.identity must be importable by the server.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }
    for name in ("JUPYTER_PATH", "JUPYTERHUB_USER", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE"):
        env.pop(name, None)
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--config={config}"],
            cwd=str(REPO),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LabServer(process, port, token, directory, log_path)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LabServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    status = f"{server.url}api/status"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            request = urllib.request.Request(status, headers={"Authorization": f"token {server.token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"jupyter lab did not answer {status} within {START_TIMEOUT:.0f} s:\n{server.log_tail()}"
    )
