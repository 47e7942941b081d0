"""The environments REST API on a real server: summaries, detail, drift and packages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rattler import PrefixRecord
from tornado.httpclient import HTTPClientError

from jupyter_envshare.config import current_user
from jupyter_envshare.lockfiles import package_ref, write_lock
from jupyter_envshare.sidecar import stamp
from jupyter_envshare.testing.layouts import SharedInstallation
from jupyter_envshare.testing.wheels import make_wheel

from .conftest import envshare_config

SPEC = """name: isis4.3.0
channels:
  - local
dependencies:
  - isis ==4.3.0
  - ipykernel
"""


@pytest.fixture
def stamped(mutable_site: SharedInstallation, tmp_path: Path) -> SharedInstallation:
    """isis4.3.0 stamped with its spec and a conda-lock made from its own records."""
    prefix = mutable_site.prefix("isis4.3.0")
    records = [package_ref(PrefixRecord.from_path(p)) for p in sorted((prefix / "conda-meta").glob("*.json"))]
    lock = tmp_path / "build" / "conda-lock.yml"
    lock.parent.mkdir()
    write_lock(records, "conda-lock", lock)
    spec = tmp_path / "build" / "environment.yml"
    spec.write_text(SPEC)
    stamp(prefix, spec=spec, lock=lock)
    return mutable_site


@pytest.fixture
def jp_server_config(stamped: SharedInstallation) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_envshare": True}},
        "EnvShare": envshare_config(stamped, refresh_interval=0, denied_envs=["nokernel"]),
    }


async def get(jp_fetch: Any, *path: str, **params: str) -> Any:
    response = await jp_fetch("envshare", "api", *path, method="GET", params=params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def test_envs_lists_summaries_with_status(jp_fetch: Any) -> None:
    # When the panel lists the environments
    envs = {e["name"]: e for e in (await get(jp_fetch, "envs"))["envs"]}
    # Then every allowed one is there, denied ones are not
    assert {"isis4.2.0", "isis4.3.0", "rstats", "activated"} <= set(envs)
    assert "nokernel" not in envs
    isis = envs["isis4.3.0"]
    assert isis["status"] == "in-sync"
    assert isis["kernels"] == ["conda-env-isis4.3.0-py"]
    assert isis["package_count"] > 3
    assert isis["built_at"]
    assert envs["isis4.2.0"]["status"] == "unlocked"
    # and one never stamped is dated by its conda history's first block, as its detail is
    unstamped = (await get(jp_fetch, "envs", "isis4.2.0"))["provenance"]["built_at"]
    assert unstamped is not None
    assert envs["isis4.2.0"]["built_at"] == unstamped
    # and the kernelspec metadata now carries the status found
    specs = json.loads((await jp_fetch("api", "kernelspecs", method="GET")).body)["kernelspecs"]
    assert specs["conda-env-isis4.3.0-py"]["spec"]["metadata"]["envshare"]["status"] == "in-sync"


async def test_env_detail_has_provenance_history_and_kernels(jp_fetch: Any) -> None:
    detail = await get(jp_fetch, "envs", "isis4.3.0")
    prov = detail["provenance"]
    assert prov["lock"]["format"] == "conda-lock"
    assert prov["lock"]["package_count"] > 3
    assert prov["spec"]["name"] == "isis4.3.0"
    assert "isis ==4.3.0" in prov["spec"]["dependencies"]
    assert prov["builder"]["user"]
    assert detail["channels"]
    assert detail["history"]
    assert detail["history"][0]["command"].startswith("conda create")
    assert detail["kernels"][0]["display_name"] == "Python 3 [shared: isis4.3.0]"


@pytest.fixture
def pip_overlay(stamped: SharedInstallation, tmp_path: Path) -> str:
    """A pip install into the shared env behind everybody's back, with the env's own pip."""
    prefix = stamped.prefix("isis4.3.0")
    wheel = make_wheel(tmp_path / "wheels")
    pip = [str(prefix / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    return "envshare_probe_pkg"


async def test_drift_and_packages_see_a_pip_overlay(jp_fetch: Any, pip_overlay: str) -> None:
    # Given a pip install into the shared env (pip_overlay)
    # When drift is checked, shallow and deep
    report = await get(jp_fetch, "envs", "isis4.3.0", "drift")
    deep = await get(jp_fetch, "envs", "isis4.3.0", "drift", deep="1")
    # Then it is drifted by exactly that overlay
    assert report["status"] == "drifted"
    assert [(c["kind"], c["package"]) for c in report["changes"]] == [("pip-overlay", "envshare_probe_pkg")]
    assert report["lock"]["format"] == "conda-lock"
    assert deep["deep"] is True
    assert {c["kind"] for c in deep["changes"]} == {"pip-overlay"}
    # and the package list shows it as a pip package
    packages = (await get(jp_fetch, "envs", "isis4.3.0", "packages"))["packages"]
    overlay = [p for p in packages if p["name"] == "envshare_probe_pkg"]
    assert overlay == [
        {
            "name": "envshare_probe_pkg",
            "version": "1.0",
            "build": "",
            "kind": "pypi",
            "channel": "",
            "subdir": "",
            "installer": "pip",
            "direct_url": overlay[0]["direct_url"],
        }
    ]
    assert any(p["name"] == "isis" and p["kind"] == "conda" for p in packages)


@pytest.mark.parametrize(
    "path", [("envs", "no-such-env"), ("envs", "nokernel"), ("envs", "nokernel", "drift")]
)
async def test_unknown_or_denied_env_is_a_json_404(jp_fetch: Any, path: tuple[str, ...]) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("envshare", "api", *path, method="GET")
    assert caught.value.code == 404
    assert caught.value.response is not None
    body = json.loads(caught.value.response.body)
    assert body["code"] == 404
    assert "GET envs lists the ones you can use" in body["message"]


async def test_api_requires_authentication(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("envshare", "api", "envs", method="GET", headers={"Authorization": ""})
    assert caught.value.code == 403


async def test_on_a_personal_server_the_token_holder_is_the_server_user(jp_fetch: Any) -> None:
    # jupyter_server's own identity provider only knows "whoever has the token": that is the
    # person the server runs as, so requests are filed under that name, not a made-up one.
    me = await get(jp_fetch, "whoami")
    assert me == {"name": current_user(), "is_admin": False}
