"""The guard inside IPython: `!` commands, package magics, %%bash cells and `%envshare`.

What IPython's syntax does not show (``subprocess.run([sys.executable, "-m", "pip", ...])``,
``os.system(...)``, ``os.exec*``, ``os.posix_spawn``) meets an audit hook: a blocked command raises
:class:`SharedEnvironmentReadOnly` (advise mode) after the advice is shown. Commands a bare name
sends through the guard's PATH shims are left to the shims, which answer them the same way.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading
import unicodedata
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .advice import record_attempt, record_event, render
from .commands import analyze, analyze_argv, blocked, requestable
from .context import GuardContext

LINE_MAGICS = ("pip", "conda", "mamba", "micromamba", "uv")
CELL_MAGICS = ("bash", "sh", "script")
SHELLS = ("bash", "sh", "zsh", "dash")
MAX_REASON = 2000
MAX_SPECS = 50
USAGE = '%envshare request SPEC [SPEC ...] --reason "what you need it for"'
# Set (to "warn") in the kernel's environment while a command the guard already advised on runs
# in warn mode, so the shims it reaches do not advise and count it a second time.
JUDGED_VAR = "ENVSHARE_GUARD_JUDGED"
AUDIT_EVENTS = frozenset(("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec"))

_ACTIVE: Dict[int, "Guard"] = {}
# The guard the audit hook answers for; None once disarmed (audit hooks cannot be removed).
_AUDITED: List[Optional["Guard"]] = [None]
_HOOK_ADDED: List[bool] = [False]
# Per thread: the command running now was judged already (by a wrapper); the last Popen judged.
_LOCAL = threading.local()


class SharedEnvironmentReadOnly(PermissionError):
    """A command would have changed the shared environment; the message is the guard's advice."""


def _audit_hook(
    event: str,
    args: Tuple[Any, ...],
    _events: "frozenset[str]" = AUDIT_EVENTS,
    _audited: List[Optional["Guard"]] = _AUDITED,
    _local: threading.local = _LOCAL,
) -> None:
    if event not in _events:
        return
    guard = _audited[0]
    if guard is None or getattr(_local, "judged", False):
        return
    guard.audit(event, args)


class Guard:
    """Wraps the shell's system calls and package magics of one IPython shell."""

    def __init__(self, shell: Any, context: GuardContext) -> None:
        self.shell = shell
        self.context = context
        self._saved: Dict[str, Any] = {}
        self._line: Dict[str, Optional[Callable[..., Any]]] = {}
        self._cell: Dict[str, Optional[Callable[..., Any]]] = {}
        self._pid = os.getpid()

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
            if _already_judged():  # inside a magic that judged its command
                return original_system(_escape_expansion(expanded))
            verdicts = self.verdicts_for_shell(expanded)
            if not self.allow(verdicts, expanded, "system"):
                shell.user_ns["_exit_code"] = 1
                return None
            with judged(warned=bool(verdicts)):
                return original_system(_escape_expansion(expanded))

        def getoutput(cmd: str, split: bool = True, depth: int = 0) -> Any:
            expanded = shell.var_expand(cmd, depth=depth + 1)
            if _already_judged():
                return original_getoutput(_escape_expansion(expanded), split=split)
            verdicts = self.verdicts_for_shell(expanded)
            if not self.allow(verdicts, expanded, "system"):
                shell.user_ns["_exit_code"] = 1
                return _empty_output(split)
            with judged(warned=bool(verdicts)):
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
        _AUDITED[0] = self
        if not _HOOK_ADDED[0] and hasattr(sys, "addaudithook"):
            sys.addaudithook(_audit_hook)
            _HOOK_ADDED[0] = True

    def uninstall(self) -> None:
        """Restore what install replaced; the audit hook stays but does nothing."""
        if _AUDITED[0] is self:
            _AUDITED[0] = None
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
        self._advise(verdicts, command, via)
        return self.context.mode == "warn"

    def _advise(self, verdicts: List[Any], command: str, via: str) -> str:
        """Show the advice (as a display bundle when inside this kernel's cell) and count the attempt."""
        text = f"envshare guard: {command[:200]!r} would change the shared environment {self.context.env}."
        try:
            bundle = render(self.context, verdicts, command)
            text = bundle["text/plain"]
            if os.getpid() == self._pid and threading.current_thread() is threading.main_thread():
                self._publish(bundle)
            else:  # a forked child or a background thread: no display channel of its own
                sys.stderr.write(text + "\n")
        except Exception as err:  # advice that cannot be shown must not hide the decision
            sys.stderr.write(f"envshare guard: {command[:200]!r} stopped ({err})\n")
        with contextlib.suppress(Exception):  # counting must never change the decision
            record_attempt(self.context, verdicts, via)
        return text

    def _publish(self, bundle: Dict[str, Any]) -> None:
        from IPython.display import publish_display_data

        publish_display_data(bundle)  # type: ignore[no-untyped-call]

    # -- the audit hook -------------------------------------------------------------------------

    def audit(self, event: str, args: Tuple[Any, ...]) -> None:
        """Judge a process about to start; raise SharedEnvironmentReadOnly to stop it (advise mode)."""
        try:
            request = _audited_command(event, args)
        except Exception:  # an odd argument shape: let it run
            return
        if request is None:
            return
        argv, text, cwd, environ = request
        if event == "subprocess.Popen":
            _LOCAL.popen = argv
        elif argv is not None and getattr(_LOCAL, "popen", None) == argv:
            _LOCAL.popen = None  # the posix_spawn of a Popen judged a moment ago
            return
        try:
            target = self.context.target(cwd=cwd, environ=environ)
            found = blocked(analyze(text, target) if text is not None else analyze_argv(argv or [], target))
            verdicts = [v for v in found if not self._shim_answers(v.entry, environ)]
        except Exception:  # the guard must never break a spawn because of a guard bug
            return
        if not verdicts or self.context.mode == "off":
            return
        command = text if text is not None else _join(argv or [])
        advice = self._advise(verdicts, command, "spawn")
        if self.context.mode == "advise":
            _LOCAL.popen = None  # stopped: a later spawn of the same argv is judged afresh
            raise SharedEnvironmentReadOnly(advice)

    def _shim_answers(self, entry: str, environ: Optional[Mapping[str, str]]) -> bool:
        """Whether the program ``entry`` names is one of the guard's shims (which judge it themselves)."""
        shims = self.context.shims
        if not shims or not entry:
            return False
        shims_real = os.path.realpath(shims)
        if "/" in entry:
            return os.path.realpath(os.path.dirname(entry)) == shims_real
        path_value = (environ if environ is not None else os.environ).get("PATH", "")
        for directory in path_value.split(os.pathsep):
            if not directory:
                continue
            candidate = os.path.join(directory, entry)
            if os.path.realpath(directory) == shims_real:
                return os.path.isfile(candidate)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return False
        return False

    # -- magics ---------------------------------------------------------------------------------

    def _line_magic(self, name: str) -> Callable[[str], Any]:
        def magic(line: str) -> Any:
            original = self._line.get(name)
            verdicts: List[Any] = []
            if not _already_judged():
                try:
                    verdicts = blocked(analyze_argv([name, *_split(line)], self.context.target()))
                except Exception:  # the guard must never break a cell; when unsure, let it run
                    verdicts = []
                if not self.allow(verdicts, f"%{name} {line}", "magic"):
                    return None
            with judged(warned=bool(verdicts)):
                if original is not None:
                    return original(line)
                return self.shell.system(f"{name} {line}")

        magic.__doc__ = f"%{name}, guarded: changes to the shared environment are stopped with advice."
        return magic

    def _cell_magic(self, name: str) -> Callable[[str, str], Any]:
        def magic(line: str, cell: str) -> Any:
            interpreter = name if name != "script" else (_split(line) or [""])[0]
            verdicts: List[Any] = []
            if interpreter.rsplit("/", 1)[-1] in SHELLS and not _already_judged():
                verdicts = self.verdicts_for_shell(cell)
                if not self.allow(verdicts, cell, "cell"):
                    return None
            original = self._cell[name]
            assert original is not None
            with judged(warned=bool(verdicts)):
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
        reason = clean_reason(reason)
        if not specs or not reason:
            print(f"A request needs at least one spec and a reason. Usage: {USAGE}", file=sys.stderr)
            return
        if len(specs) > MAX_SPECS or len(reason) > MAX_REASON:
            print(f"At most {MAX_SPECS} specs and {MAX_REASON} characters of reason.", file=sys.stderr)
            return
        refused = [spec for spec in specs if not requestable([spec])]
        if refused:
            print(
                "Only package names with optional extras and version constraints can be requested "
                "(like polars, 'numpy>=1.26', conda-forge::scipy=1.11); not: "
                + ", ".join(repr(spec[:80]) for spec in refused[:5])
                + ". Paths, URLs and options cannot be requested.",
                file=sys.stderr,
            )
            return
        specs = [spec.strip() for spec in specs]
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


def clean_reason(text: str) -> str:
    """The reason without control characters (newlines and tabs kept), trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()


def _already_judged() -> bool:
    return bool(getattr(_LOCAL, "judged", False))


@contextlib.contextmanager
def judged(warned: bool = False) -> Iterator[None]:
    """Mark the command running inside as judged: the audit hook (this thread) skips it and, after
    a warning, so do the shims it reaches (through the environment, for the duration only)."""
    previous = _already_judged()
    _LOCAL.judged = True
    marked = warned and JUDGED_VAR not in os.environ
    if marked:
        os.environ[JUDGED_VAR] = "warn"
    try:
        yield
    finally:
        _LOCAL.judged = previous
        if marked:
            os.environ.pop(JUDGED_VAR, None)


def _text(value: Any) -> str:
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        return os.fsdecode(value)
    return str(value)


def _join(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _audited_command(
    event: str, args: Tuple[Any, ...]
) -> Optional[Tuple[Optional[List[str]], Optional[str], Optional[str], Optional[Mapping[str, str]]]]:
    """(argv, shell text, cwd, environment) of an audited process start."""
    if event == "os.system":
        return None, _text(args[0]), None, None
    if event == "subprocess.Popen":
        executable, arguments, cwd, env = args
        argv = [_text(a) for a in arguments]
        if not argv:
            return None
        if executable is not None:
            argv[0] = _text(executable)
        where = os.path.abspath(_text(cwd)) if cwd is not None else None
        return argv, None, where, _environ(env)
    # os.posix_spawn(p), os.exec*: (path, argv, env)
    path, arguments, env = args
    argv = [_text(a) for a in arguments] or [""]
    argv[0] = _text(path)
    return argv, None, None, _environ(env)


def _environ(env: Any) -> Optional[Mapping[str, str]]:
    if env is None:
        return None
    return {_text(k): _text(v) for k, v in env.items()}


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
