"""The PATH shims' logic: `conda`, `pip`, `uv`... outside IPython get the same judgement.

A shim script runs ``main("--shims", SHIMS_DIR, tool, *args)`` (older shims: ``main(tool, *args)``).
A command that would change the shared environment gets the advice as text on stderr and exit
status 1 (in warn mode it runs after the advice); anything else is handed to the real tool, found
on PATH after the shims. A shim never runs a shim, so a missing tool is "not found", never a loop.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence

from .advice import record_attempt, render
from .commands import analyze_argv, blocked, is_envshare_shim
from .context import GuardContext

NOT_FOUND = 127
JUDGED_VAR = "ENVSHARE_GUARD_JUDGED"  # the kernel advised on this command already (warn mode)


def find_real(tool: str, shims_dirs: Sequence[str], path: Optional[str] = None) -> Optional[str]:
    """The tool as it would be found without the shims (any envshare shim is skipped)."""
    if isinstance(shims_dirs, str):
        shims_dirs = [shims_dirs]
    skipped = {os.path.realpath(d) for d in shims_dirs if d}
    for directory in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not directory or os.path.realpath(directory) in skipped:
            continue
        candidate = os.path.join(directory, tool)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_envshare_shim(candidate):
            return candidate
    return None


def _own_directory(given: str) -> str:
    # "${0%/*}" is the shim's directory, or the shim's own name when it was run without a slash.
    if os.path.isdir(given):
        return given
    return os.path.dirname(os.path.abspath(given))


def main(argv: Optional[List[str]] = None) -> int:
    """Judge ``tool args...``; exec the real tool or print advice and fail."""
    args = list(sys.argv[1:] if argv is None else argv)
    own = ""
    if len(args) >= 2 and args[0] == "--shims":
        own = _own_directory(args[1])
        args = args[2:]
    if not args:
        sys.stderr.write("envshare guard shim: no tool given\n")
        return 2
    tool, rest = args[0], args[1:]
    context = GuardContext.from_environ()
    already = os.environ.get(JUDGED_VAR) == "warn"
    if context is not None and context.mode != "off" and not (already and context.mode == "warn"):
        try:
            verdicts = blocked(analyze_argv([tool, *rest], context.target()))
        except Exception:  # never stand between a user and a tool because of a guard bug
            verdicts = []
        if verdicts:
            command = " ".join([tool, *rest])
            try:
                sys.stderr.write(render(context, verdicts, command)["text/plain"] + "\n")
                sys.stderr.flush()
            except Exception:
                sys.stderr.write(f"envshare guard: {tool} would change the shared environment\n")
            record_attempt(context, verdicts, "shim")
            if context.mode == "advise":
                return 1
    real = find_real(tool, [own, context.shims if context is not None else ""])
    if real is None:
        sys.stderr.write(f"{tool}: command not found\n")
        return NOT_FOUND
    os.execv(real, [real, *rest])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
