"""jupyter_envshare's install guard: stops in-notebook changes to a shared environment, with advice.

Loaded with ``--ext=envshare_guard`` by the envshare provisioner. Standard library only.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(shell: Any) -> None:
    """Arm the guard in this kernel (a no-op outside shared-environment kernels)."""
    from .ipython import install

    install(shell)


def unload_ipython_extension(shell: Any) -> None:
    """Disarm the guard."""
    from .ipython import uninstall

    uninstall(shell)
