"""A small stand-in kernel that explains why a shared-environment kernel could not start.

Started by the provisioner (with the server's own Python) when the requested environment is gone,
denied or broken, so the notebook shows the reason on every cell instead of a kernel dying silently.
Run as ``python -m jupyter_envshare.fallback -f {connection_file}`` with the explanation in
``ENVSHARE_FALLBACK_MESSAGE``.
"""

from __future__ import annotations

import os
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp

MESSAGE_VAR = "ENVSHARE_FALLBACK_MESSAGE"
DEFAULT_MESSAGE = "This shared-environment kernel is not available."


class UnavailableEnvKernel(IPythonKernel):
    """Answers every execution with the reason the real kernel could not start."""

    implementation = "envshare-fallback"
    banner = "jupyter_envshare: the requested shared environment is not available"

    @property
    def message(self) -> str:
        """The explanation given by the provisioner."""
        return os.environ.get(MESSAGE_VAR) or DEFAULT_MESSAGE

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Report the problem instead of running the code."""
        text = f"{self.message}\n\nThis cell was not run. Choose another kernel or ask your admins."
        if not silent:
            self.send_response(  # type: ignore[no-untyped-call]
                self.iopub_socket, "stream", {"name": "stderr", "text": text}
            )
        return {
            "status": "error",
            "execution_count": self.execution_count,
            "ename": "SharedEnvironmentUnavailable",
            "evalue": self.message,
            "traceback": [text],
        }


def main() -> None:
    """Start the fallback kernel."""
    IPKernelApp.launch_instance(kernel_class=UnavailableEnvKernel)


if __name__ == "__main__":
    main()
