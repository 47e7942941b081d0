"""The PATH shims' logic: `conda`, `pip`, `uv`... outside IPython get the same judgement.

A shim script runs ``main(tool, *args)``. A command that would change the shared environment gets
the advice as text on stderr and exit status 1 (in warn mode it runs after the advice); anything
else is handed to the real tool, found on PATH after the shims directory.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from .advice import record_attempt, render
from .commands import analyze_argv, blocked
from .context import GuardContext

NOT_FOUND = 127


def find_real(tool: str, shims_dir: str, path: Optional[str] = None) -> Optional[str]:
    """The tool as it would be found without the shims."""
    shims = os.path.realpath(shims_dir) if shims_dir else ""
    for directory in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not directory or (shims and os.path.realpath(directory) == shims):
            continue
        candidate = os.path.join(directory, tool)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Judge ``tool args...``; exec the real tool or print advice and fail."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("envshare guard shim: no tool given\n")
        return 2
    tool, rest = args[0], args[1:]
    context = GuardContext.from_environ()
    shims_dir = context.shims if context is not None else os.path.dirname(os.path.abspath(sys.argv[0]))
    if context is not None and context.mode != "off":
        try:
            verdicts = blocked(analyze_argv([tool, *rest], context.target()))
        except Exception:  # never stand between a user and a tool because of a guard bug
            verdicts = []
        if verdicts:
            command = " ".join([tool, *rest])
            sys.stderr.write(render(context, verdicts, command)["text/plain"] + "\n")
            sys.stderr.flush()
            record_attempt(context, verdicts, "shim")
            if context.mode == "advise":
                return 1
    real = find_real(tool, shims_dir)
    if real is None:
        sys.stderr.write(f"{tool}: command not found\n")
        return NOT_FOUND
    os.execv(real, [real, *rest])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
