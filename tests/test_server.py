"""The server extension in a real jupyter_server over HTTP: kernelspecs, swaps and real kernels."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from jupyter_envshare.testing.layouts import SharedInstallation, abuild_second_generation, swap_current

from .conftest import envshare_config


@pytest.fixture
def jp_server_config(mutable_site: SharedInstallation) -> dict[str, Any]:
    # What the package's jupyter-config file enables on a real install (jp_environ hides that
    # file), plus the admin's c.EnvShare; the extension itself sets the kernelspec manager.
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_envshare": True}},
        "EnvShare": envshare_config(mutable_site, refresh_interval=0),
    }


def real_prefix(inst: SharedInstallation, env: str) -> str:
    return os.path.realpath(inst.prefix(env))


async def kernelspecs(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("api", "kernelspecs", method="GET")
    assert response.code == 200
    specs: dict[str, Any] = json.loads(response.body)["kernelspecs"]
    return specs


async def test_kernelspecs_api_lists_shared_kernels(jp_fetch: Any, mutable_site: SharedInstallation) -> None:
    # When the frontend asks for kernelspecs
    specs = await kernelspecs(jp_fetch)
    # Then native and shared kernels are there, the shared ones with provisioner and state
    assert "python3" in specs
    shared = specs["conda-env-isis4.3.0-py"]["spec"]
    assert shared["display_name"] == "Python 3 [shared: isis4.3.0]"
    assert shared["metadata"]["kernel_provisioner"]["provisioner_name"] == "envshare-provisioner"
    assert shared["metadata"]["envshare"]["prefix"] == real_prefix(mutable_site, "isis4.3.0")


async def test_swapped_current_shows_without_restart(jp_fetch: Any, mutable_site: SharedInstallation) -> None:
    # Given the running server has listed generation v1
    assert "conda-env-isis4.4.0-py" not in await kernelspecs(jp_fetch)
    # When admins publish v2 and swap `current` under the running server
    await abuild_second_generation(mutable_site, "v2", ("4.3.0", "4.4.0"))
    swap_current(mutable_site, "v2")
    # Then the next request lists v2
    specs = await kernelspecs(jp_fetch)
    assert "conda-env-isis4.4.0-py" in specs
    assert "conda-env-isis4.2.0-py" not in specs


async def test_kernel_started_over_rest_runs_in_shared_env(
    jp_fetch: Any, jp_serverapp: Any, mutable_site: SharedInstallation
) -> None:
    # When a kernel is started through the REST API by its shared name
    response = await jp_fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": "conda-env-isis4.3.0-py"})
    )
    kernel = json.loads(response.body)
    assert response.code == 201
    km = jp_serverapp.kernel_manager.get_kernel(kernel["id"])
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        output: list[str] = []

        def collect(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                output.append(msg["content"]["text"])

        code = (
            "import sys, os, isis_marker\n"
            "print(sys.prefix, os.environ['CONDA_DEFAULT_ENV'], isis_marker.ENV_MARKER)"
        )
        reply = await client.execute_interactive(code, output_hook=collect, timeout=60)
    finally:
        client.stop_channels()
        await jp_fetch("api", "kernels", kernel["id"], method="DELETE")
    # Then it runs inside the shared environment
    assert reply["content"]["status"] == "ok"
    prefix = real_prefix(mutable_site, "isis4.3.0")
    assert "".join(output).split() == [prefix, "isis4.3.0", "isis4.3.0"]
