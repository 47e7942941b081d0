"""jupyter_envshare: read-only shared conda environments as Jupyter kernels."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # Imported lazily: kernels launched by nbclient load the provisioner without any server.
    from .app import EnvShareApp

    return [{"module": "jupyter_envshare", "app": EnvShareApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-envshare"}]
