"""The guard inside IPython: `!` commands, package magics, %%bash cells and `%envshare`."""

from __future__ import annotations

import shlex
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from .advice import record_attempt, record_event, render
from .commands import analyze, analyze_argv, blocked
from .context import GuardContext

LINE_MAGICS = ("pip", "conda", "mamba", "micromamba", "uv")
CELL_MAGICS = ("bash", "sh", "script")
SHELLS = ("bash", "sh", "zsh", "dash")
MAX_REASON = 2000
MAX_SPECS = 50
USAGE = '%envshare request SPEC [SPEC ...] --reason "what you need it for"'

_ACTIVE: Dict[int, "Guard"] = {}


class Guard:
    """Wraps the shell's system calls and package magics of one IPython shell."""

    def __init__(self, shell: Any, context: GuardContext) -> None:
        self.shell = shell
        self.context = context
        self._saved: Dict[str, Any] = {}
        self._line: Dict[str, Optional[Callable[..., Any]]] = {}
        self._cell: Dict[str, Optional[Callable[..., Any]]] = {}

    # -- arming ---------------------------------------------------------------------------------

    def install(self) -> None:
        """Put the guard in front of system, getoutput and the package magics."""
        shell = self.shell
        for name in ("system", "getoutput"):
            self._saved[name] = shell.__dict__.get(name)
        original_system = shell.system
        original_getoutput = shell.getoutput

        def system(cmd: str) -> Any:
            expanded = shell.var_expand(cmd, depth=1)
            if not self.allow(self.verdicts_for_shell(expanded), expanded, "system"):
                shell.user_ns["_exit_code"] = 1
                return None
            return original_system(_escape_expansion(expanded))

        def getoutput(cmd: str, split: bool = True, depth: int = 0) -> Any:
            expanded = shell.var_expand(cmd, depth=depth + 1)
            if not self.allow(self.verdicts_for_shell(expanded), expanded, "system"):
                shell.user_ns["_exit_code"] = 1
                return _empty_output(split)
            return original_getoutput(_escape_expansion(expanded), split=split)

        shell.system = system
        shell.getoutput = getoutput
        for name in LINE_MAGICS:
            self._line[name] = shell.find_line_magic(name)
            shell.register_magic_function(self._line_magic(name), "line", name)
        for name in CELL_MAGICS:
            original = shell.find_cell_magic(name)
            self._cell[name] = original
            if original is not None:
                shell.register_magic_function(self._cell_magic(name), "cell", name)
        shell.register_magic_function(self.envshare_magic, "line", "envshare")

    def uninstall(self) -> None:
        """Restore what install replaced."""
        shell = self.shell
        for name, saved in self._saved.items():
            if saved is None:
                shell.__dict__.pop(name, None)
            else:
                setattr(shell, name, saved)
        manager = shell.magics_manager
        for name, original in self._line.items():
            if original is None:
                manager.magics["line"].pop(name, None)
            else:
                manager.magics["line"][name] = original
        for name, original in self._cell.items():
            if original is not None:
                manager.magics["cell"][name] = original
        manager.magics["line"].pop("envshare", None)

    # -- decisions ------------------------------------------------------------------------------

    def verdicts_for_shell(self, text: str) -> List[Any]:
        """Blocked verdicts for shell text."""
        try:
            return blocked(analyze(text, self.context.target()))
        except Exception:  # the guard must never break a cell; when unsure, let it run
            return []

    def allow(self, verdicts: List[Any], command: str, via: str) -> bool:
        """Show advice for blocked commands; True when the command may run (none, or warn mode)."""
        if not verdicts or self.context.mode == "off":
            return True
        try:
            self._publish(render(self.context, verdicts, command))
            record_attempt(self.context, verdicts, via)
        except Exception as err:  # advice that cannot be shown must not hide the decision
            sys.stderr.write(f"envshare guard: {command!r} stopped ({err})\n")
        return self.context.mode == "warn"

    def _publish(self, bundle: Dict[str, Any]) -> None:
        from IPython.display import publish_display_data

        publish_display_data(bundle)  # type: ignore[no-untyped-call]

    # -- magics ---------------------------------------------------------------------------------

    def _line_magic(self, name: str) -> Callable[[str], Any]:
        def magic(line: str) -> Any:
            argv = _split(line)
            verdicts = blocked(analyze_argv([name, *argv], self.context.target()))
            if not self.allow(verdicts, f"%{name} {line}", "magic"):
                return None
            original = self._line.get(name)
            if original is not None:
                return original(line)
            return self.shell.system(f"{name} {line}")

        magic.__doc__ = f"%{name}, guarded: changes to the shared environment are stopped with advice."
        return magic

    def _cell_magic(self, name: str) -> Callable[[str, str], Any]:
        def magic(line: str, cell: str) -> Any:
            interpreter = name if name != "script" else (_split(line) or [""])[0]
            if interpreter.rsplit("/", 1)[-1] in SHELLS:
                verdicts = self.verdicts_for_shell(cell)
                if not self.allow(verdicts, cell, "cell"):
                    return None
            original = self._cell[name]
            assert original is not None
            return original(line, cell)

        magic.__doc__ = f"%%{name}, guarded: changes to the shared environment are stopped with advice."
        return magic

    def envshare_magic(self, line: str) -> None:
        """%envshare [request SPEC... --reason TEXT]: this kernel's shared environment; request a change."""
        args = _split(line)
        if not args or args[0] in ("info", "status"):
            print(
                f"Shared environment: {self.context.env} ({self.context.prefix})\n"
                f"Managed by: {self.context.contact}\nGuard: {self.context.mode}\n"
                f"Request a change: {USAGE}"
            )
            return
        if args[0] != "request":
            print(f"Unknown %envshare command {args[0]!r}. Usage: {USAGE}", file=sys.stderr)
            return
        specs, reason = _request_args(args[1:])
        if not specs or not reason:
            print(f"A request needs at least one spec and a reason. Usage: {USAGE}", file=sys.stderr)
            return
        if len(specs) > MAX_SPECS or len(reason) > MAX_REASON:
            print(f"At most {MAX_SPECS} specs and {MAX_REASON} characters of reason.", file=sys.stderr)
            return
        if record_event(self.context, "request-intent", env=self.context.env, specs=specs, reason=reason):
            print(
                f"Recorded your request for {' '.join(specs)} in {self.context.env}. "
                "The admins will see it in the request queue; the Shared environments panel shows its status."
            )
        else:
            print("Your request could not be recorded (the event spool is not writable).", file=sys.stderr)


def _request_args(args: List[str]) -> Tuple[List[str], str]:
    specs: List[str] = []
    reason = ""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("--reason", "-r") and index + 1 < len(args):
            reason = args[index + 1]
            index += 2
            continue
        if arg.startswith("--reason="):
            reason = arg.split("=", 1)[1]
        else:
            specs.append(arg)
        index += 1
    return specs, reason.strip()


def _empty_output(split: bool) -> Any:
    from IPython.utils.text import SList

    return SList() if split else ""


def _split(line: str) -> List[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _escape_expansion(text: str) -> str:
    # The original system() expands {vars} and $vars again; the text is expanded already.
    return text.replace("$", "$$").replace("{", "{{").replace("}", "}}")


def install(shell: Any) -> None:
    """Arm the guard on a shell if this kernel runs in a shared environment."""
    context = GuardContext.from_environ()
    if context is None or context.mode == "off" or id(shell) in _ACTIVE:
        return
    guard = Guard(shell, context)
    guard.install()
    _ACTIVE[id(shell)] = guard


def uninstall(shell: Any) -> None:
    """Disarm the guard of a shell."""
    guard = _ACTIVE.pop(id(shell), None)
    if guard is not None:
        guard.uninstall()
