"""Which package commands would change the shared environment: shell text and argv -> verdicts.

A command is judged by its *target*: ``conda install`` with no ``-n``/``-p`` changes the active
environment (the shared one), ``pip install --target ~/lib`` does not. Read-only subcommands
(``list``, ``show``, ``freeze``, ``info``, ``search``, ``env export``, ``config --show``) pass.
Variables matter only to the tools that read them: conda's default target is ``CONDA_PREFIX``,
uv's ``VIRTUAL_ENV`` then ``CONDA_PREFIX``, pip honours ``PIP_TARGET``/``PIP_PREFIX``/``PIP_ROOT``/
``PIP_USER``/``PIP_PYTHON`` and otherwise installs into the environment of its own interpreter.
Everything here is string work plus a few ``stat`` calls: it runs inside kernels (stdlib only,
Python >= 3.8) and in the PATH shims, and must never raise on odd input.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

CONDA_TOOLS = ("conda", "mamba", "micromamba")
KNOWN_TOOLS = (*CONDA_TOOLS, "pip", "uv")  # and conda-<plugin> (e.g. conda-env)
CONDA_MODIFY = {"install", "update", "upgrade", "remove", "uninstall"}
CONDA_ENV_MODIFY = {"update", "remove", "create"}
CONDA_CONFIG_WRITE = {"--set", "--add", "--append", "--prepend", "--remove", "--remove-key"}
CONDA_VALUE_OPTIONS = {
    "-n",
    "--name",
    "-p",
    "--prefix",
    "-c",
    "--channel",
    "--file",
    "--repodata-fn",
    "--solver",
    "--subdir",
    "--platform",
    "--override-channels-file",
    "-f",
    "--category",
    "--json-file",
    "--root-prefix",
    "-r",
    "--experimental",
    "--stack",
    "--clone",
}
PIP_MODIFY = {"install", "uninstall"}
# pip's general options (`pip --help`) that take a value; --log-file and --local-log are
# hidden aliases of --log.
PIP_GENERAL_VALUE_OPTIONS = {
    "--python",
    "--log",
    "--log-file",
    "--local-log",
    "--keyring-provider",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--use-feature",
    "--use-deprecated",
    "--resume-retries",
    "--default-timeout",
}
PIP_VALUE_OPTIONS = PIP_GENERAL_VALUE_OPTIONS | {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
    "--report",
    "-C",
    "--config-settings",
    "--global-option",
    "--no-binary",
    "--only-binary",
    "--group",
    "--root-user-action",
    # aliases, newer options, and options of earlier pips
    "--pypi-url",
    "--source",
    "--source-dir",
    "--source-directory",
    "--build-constraint",
    "--requirements-from-script",
    "--all-releases",
    "--only-final",
    "--refresh-package",
    "--uploaded-prior-to",
    "--install-option",
    "--build-option",
}
# pip's long options that take no value. pip (optparse) takes any unambiguous prefix of a long option
# for the option: `--targ DIR` is `--target DIR`. Before the subcommand only the general options
# count; after it, the general ones and the subcommand's (pip 26's: options of earlier pips that no
# longer exist would make some prefixes look ambiguous that pip resolves).
PIP_GENERAL_FLAGS = {
    "--help",
    "--debug",
    "--isolated",
    "--require-virtualenv",
    "--require-venv",
    "--verbose",
    "--version",
    "--quiet",
    "--no-input",
    "--no-cache-dir",
    "--disable-pip-version-check",
    "--no-color",
    "--no-python-version-warning",
    "--no-proxy-env",
}
PIP_INSTALL_FLAGS = {
    "--break-system-packages",
    "--check-build-dependencies",
    "--compile",
    "--no-compile",
    "--dry-run",
    "--force-reinstall",
    "--ignore-installed",
    "--ignore-requires-python",
    "--no-build-isolation",
    "--no-clean",
    "--no-dependencies",
    "--no-deps",
    "--only-dependencies",
    "--only-deps",
    "--no-index",
    "--no-require-hashes",
    "--require-hashes",
    "--user",
    "--no-user",
    "--no-warn-conflicts",
    "--no-warn-script-location",
    "--pre",
    "--prefer-binary",
    "--upgrade",
    "--use-pep517",
}
PIP_UNINSTALL_FLAGS = {"--yes", "--break-system-packages"}
_PIP_FORMER_OPTIONS = {"--install-option", "--build-option", "--global-option"}  # values, still read
PIP_GENERAL_LONG = frozenset(PIP_GENERAL_FLAGS | PIP_GENERAL_VALUE_OPTIONS)
PIP_SUBCOMMAND_LONG: Dict[str, FrozenSet[str]] = {
    "install": frozenset(
        PIP_GENERAL_LONG
        | PIP_INSTALL_FLAGS
        | {o for o in PIP_VALUE_OPTIONS if o.startswith("--") and o not in _PIP_FORMER_OPTIONS}
    ),
    "uninstall": frozenset(PIP_GENERAL_LONG | PIP_UNINSTALL_FLAGS | {"--requirement", "--root-user-action"}),
}
UV_PIP_MODIFY = {"install", "uninstall", "sync"}
UV_VALUE_OPTIONS = PIP_VALUE_OPTIONS | {
    "-p",
    "--python",
    "--index",
    "--default-index",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--link-mode",
    "--exclude-newer",
    "-o",
    "--output-file",
    "--overrides",
    "--build-constraints",
    "--extra",
    "--torch-backend",
    "--directory",
    "--project",
    "--config-file",
    "--cache-dir",
    "--color",
}
# Words that only prefix the real command, with their options that take a value.
_WRAPPERS: Dict[str, Set[str]] = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U", "--user", "--group", "--chdir"},
    "doas": {"-u", "-C"},
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "command": set(),
    "builtin": set(),
    "exec": {"-a"},
    "nohup": set(),
    "time": {"-f", "--format", "-o", "--output"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "--class", "-n", "--classdata"},
    "stdbuf": {"-i", "-o", "-e", "--input", "--output", "--error"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "xargs": {
        "-a",
        "--arg-file",
        "-d",
        "--delimiter",
        "-E",
        "-I",
        "-L",
        "--max-lines",
        "-n",
        "--max-args",
        "-P",
        "--max-procs",
        "-s",
        "--max-chars",
        "--process-slot-var",
    },
}
_KEYWORDS = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "}"}
_DECLARE = {"export", "declare", "typeset", "local", "readonly"}
SHELLS = ("bash", "sh", "zsh", "dash", "ksh")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "\n", "|&"}
_REDIRECTS = re.compile(r"^\d*(>>?|<<?<?|>&|<&|&>>?|>\||<>)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=+?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_FD_BEFORE_REDIRECT = re.compile(r"[0-9][<>]")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_PIP = re.compile(r"^pip(\d+(\.\d+)?)?$")
# Interpreter options: flags, and those that take a value (attached or as the next word).
_PYTHON_FLAGS = set("bBdEhiIOPqRsSuvVx3")
_PYTHON_VALUE_FLAGS = set("WXQ")
_PYTHON_LONG_VALUE_OPTIONS = {"--check-hash-based-pycs"}
# A requirement a person could ask admins for: a name, optional extras and version constraints.
_REQUESTABLE = re.compile(
    r"^(?:[A-Za-z0-9_.\-]+::)?[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9_,.\- ]*\])?"
    r"\s*(?:(?:==|>=|<=|!=|~=|>|<|=)\s*[A-Za-z0-9*._+!\-]+\s*,?\s*)*$"
)
_NAME = re.compile(r"^(?:[A-Za-z0-9_.\-]+::)?([A-Za-z0-9][A-Za-z0-9._\-]*)")
_TRUE = {"1", "y", "yes", "t", "true", "on"}
MAX_COMMAND_CHARS = 100000
MAX_SPEC_CHARS = 200
MAX_FILE_BYTES = 256 * 1024
MAX_SCRIPT_DEPTH = 4  # scripts read inside scripts (`bash a.sh`, a.sh sourcing b.sh, ...)
MAX_SCRIPT_READS = 16  # scripts read while judging one command, however they fan out
USER_SITE = "~/.local"


@dataclass
class Target:
    """Where package commands of this kernel land unless told otherwise.

    ``roots`` are the protected places: the shared environments' roots (configured and resolved
    spellings), the installations' base prefixes and explicit environment prefixes. Anything at or
    under one of them is shared. ``variables`` is the environment commands start with.
    """

    env: str
    prefix: str
    roots: Sequence[str] = ()
    home: str = ""
    cwd: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    shims: str = ""


@dataclass
class Verdict:
    """The judgement on one package command.

    ``entry`` is the program the command starts as written (``pip``, ``/x/bin/python``...): a bare
    name is found on PATH, where the guard's shims may answer for it.
    """

    blocked: bool
    tool: str
    action: str
    specs: List[str]
    reason: str
    target: str = ""
    entry: str = ""


@dataclass
class _State:
    """What earlier commands of a chain changed: shell variables, activation, directory."""

    active: Optional[str] = None  # prefix whose bin/ leads PATH (`source .../activate`, `conda activate`)
    variables: Dict[str, Optional[str]] = field(default_factory=dict)  # None: unset
    exported: Set[str] = field(default_factory=set)
    cwd: Optional[str] = None
    path_changed: bool = False  # PATH was assigned after the last activation
    cleared: bool = False  # started with an empty environment (`env -i`)
    depth: int = 0  # scripts being read inside one another (`bash a.sh` whose a.sh sources b.sh)
    reads: List[int] = field(default_factory=lambda: [MAX_SCRIPT_READS])  # left for this analysis

    def child(self, inline: Mapping[str, Optional[str]], cleared: bool) -> "_State":
        """The state a child process (``bash -c``, ``conda run``) starts with."""
        variables: Dict[str, Optional[str]] = {
            k: v for k, v in self.variables.items() if k in self.exported or v is None
        }
        variables.update(inline)
        return _State(
            active=self.active,
            variables=variables,
            exported=set(self.exported) | set(inline),
            cwd=self.cwd,
            path_changed=self.path_changed or "PATH" in inline,
            cleared=self.cleared or cleared,
            depth=self.depth,
            reads=self.reads,
        )

    def copy(self) -> "_State":
        """The same shell state, whose changes do not come back (a sourced script's, see below)."""
        return _State(
            active=self.active,
            variables=dict(self.variables),
            exported=set(self.exported),
            cwd=self.cwd,
            path_changed=self.path_changed,
            cleared=self.cleared,
            depth=self.depth,
            reads=self.reads,
        )


@dataclass
class _Command:
    """The environment changes that apply to one simple command only (``X=1 cmd``, ``env -u X cmd``)."""

    inline: Dict[str, Optional[str]] = field(default_factory=dict)
    cleared: bool = False


def analyze(text: str, target: Target) -> List[Verdict]:
    """Verdicts on every package command in shell text (a `!` line, a %%bash cell, a bash -c)."""
    return _analyze_text(text, target, _State())


def analyze_argv(argv: Sequence[str], target: Target) -> List[Verdict]:
    """Verdicts on one command given as an argument vector (from a PATH shim or a spawn)."""
    return _analyze_argv(list(argv), target, _State())


def blocked(verdicts: Iterable[Verdict]) -> List[Verdict]:
    """The verdicts that stop the command."""
    return [v for v in verdicts if v.blocked]


def requestable(specs: Iterable[str]) -> List[str]:
    """The specs a person can request (names and version constraints, no paths, URLs or vars)."""
    seen: List[str] = []
    for spec in specs:
        text = spec.strip()
        if text and len(text) <= MAX_SPEC_CHARS and _REQUESTABLE.match(text) and text not in seen:
            seen.append(text)
    return seen


def package_names(specs: Iterable[str]) -> List[str]:
    """Lower-case package names of requestable specs (what demand is counted by)."""
    names: List[str] = []
    for spec in requestable(specs):
        match = _NAME.match(spec)
        if match:
            name = match.group(1).lower()
            if name not in names:
                names.append(name)
    return names


def is_shared(path: str, target: Target) -> bool:
    """Whether a path is, or lies in, the shared environment or another protected place.

    Both spellings count: as written and resolved (``current/envs/x`` and ``v1/envs/x``). A place
    that contains the user's home (a root configured too high) never makes the home shared.
    """
    if not path:
        return False
    candidates = _spellings(path)
    homes = _spellings(target.home) if target.home else set()
    for place in _protected_places(target):
        for spelled in _spellings(place):
            inside = spelled.rstrip("/") + "/"
            covers_home = any(h == spelled or h.startswith(inside) for h in homes)
            for candidate in candidates:
                if candidate == spelled:
                    return True
                if candidate.startswith(inside):
                    if covers_home and any(candidate == h or candidate.startswith(h + "/") for h in homes):
                        continue
                    return True
    return False


_is_shared = is_shared


def _protected_places(target: Target) -> List[str]:
    """The shared prefix, the roots, and the base installation of every ``<base>/envs`` among them."""
    places = [target.prefix, *target.roots]
    for envs in (os.path.dirname(os.path.normpath(target.prefix)), *target.roots):
        envs = os.path.normpath(envs) if envs else ""
        if os.path.basename(envs) == "envs":
            places.append(os.path.dirname(envs))
    return [p for p in places if p]


def is_envshare_shim(path: str) -> bool:
    """Whether an executable is one of the guard's PATH shims (never to be run as the real tool)."""
    head = read_regular(path, 512)
    return head is not None and SHIM_MARKER in head


SHIM_MARKER = "jupyter_envshare guard shim"


def read_regular(path: str, limit: int = MAX_FILE_BYTES) -> Optional[str]:
    """The first ``limit`` bytes of a regular file as text; None for anything else.

    FIFOs, ``/dev/stdin``, terminals and devices are never opened for reading: they could block.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            chunks: List[bytes] = []
            size = 0
            while size < limit:
                chunk = os.read(fd, limit - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except (OSError, ValueError, TypeError):
        return None
    return b"".join(chunks).decode("utf-8", errors="replace")


# -- shell text -> argv lists ----------------------------------------------------------------------


def split_commands(text: str) -> List[List[str]]:
    """Simple commands of shell text, split at ;, &&, ||, |, & and newlines; quoting respected.

    Comments and here-document bodies are not commands; ``2>`` is a redirect, not an argument.
    """
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    commands: List[List[str]] = []
    for line in _logical_lines(joined):
        current: List[str] = []
        skip_next = False
        for token in _tokens(_drop_fd_numbers(line)):
            if skip_next:
                skip_next = False
                continue
            if token in _SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            elif _REDIRECTS.match(token):
                skip_next = True
            elif token.startswith("#") and not current:
                break
            else:
                current.append(token)
        if current:
            commands.append(current)
    return commands


def _logical_lines(text: str) -> List[str]:
    # Newlines inside quotes belong to the command; others separate commands. Comments are dropped
    # (an apostrophe in one must not open a quote) and here-document bodies are skipped.
    lines: List[str] = []
    buf: List[str] = []
    quote = ""
    escaped = False
    index = 0
    end = len(text)
    while index < end:
        char = text[index]
        index += 1
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char == "#" and (not buf or buf[-1] in " \t;&|()"):
            newline = text.find("\n", index)
            index = end if newline < 0 else newline
            continue
        elif char == "\n":
            line = "".join(buf)
            buf = []
            if line.strip():
                lines.append(line)
                if "<<" in line:
                    index = _skip_heredocs(text, index, line)
            continue
        buf.append(char)
    line = "".join(buf)
    if line.strip():
        lines.append(line)
    return lines


def _skip_heredocs(text: str, index: int, line: str) -> int:
    """The position after the bodies of the here-documents that ``line`` opens."""
    tokens = _tokens(line)
    for position, token in enumerate(tokens[:-1]):
        if token != "<<":
            continue
        delimiter = tokens[position + 1]
        strip_tabs = delimiter.startswith("-")
        if strip_tabs:
            delimiter = delimiter[1:]
        while index < len(text):
            newline = text.find("\n", index)
            stop = len(text) if newline < 0 else newline
            body = text[index:stop]
            index = stop + 1
            if (body.lstrip("\t") if strip_tabs else body).rstrip("\r") == delimiter:
                break
    return index


def _drop_fd_numbers(line: str) -> str:
    # `2>/dev/null`: the 2 names a file descriptor. Unquoted digits right before < or > at the start
    # of a word are dropped so they do not become an argument (`2 >x` keeps its argument 2).
    if not _FD_BEFORE_REDIRECT.search(line):
        return line
    out: List[str] = []
    quote = ""
    escaped = False
    index = 0
    while index < len(line):
        char = line[index]
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char in "0123456789" and (index == 0 or line[index - 1] in " \t;|("):
            stop = index
            while stop < len(line) and line[stop] in "0123456789":
                stop += 1
            if stop < len(line) and line[stop] in "<>":
                index = stop
                continue
            out.append(line[index:stop])
            index = stop
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokens(line: str) -> List[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: judge the words as they stand
        return line.split()


def _split_words(text: str) -> List[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


# -- variables and paths ---------------------------------------------------------------------------


def _shell_value(name: str, target: Target, state: _State) -> Optional[str]:
    """A variable as the shell expands it: set earlier in the chain, else from the environment."""
    if name in state.variables:
        return state.variables[name]
    return None if state.cleared else target.variables.get(name)


def _env_value(name: str, target: Target, state: _State, command: _Command) -> Optional[str]:
    """A variable as the started program sees it in its environment."""
    if name in command.inline:
        return command.inline[name]
    if command.cleared:
        return None
    if name in state.variables and (name in state.exported or name in target.variables):
        return state.variables[name]
    return None if state.cleared else target.variables.get(name)


def _expand_vars(word: str, target: Target, state: _State) -> str:
    if "$" not in word:
        return word

    def value(match: "re.Match[str]") -> str:
        name = match.group(1) or match.group(4)
        current = _shell_value(name, target, state)
        operator, word = match.group(2), match.group(3) or ""
        if not operator:
            return current or ""
        unset = current is None or (operator.startswith(":") and current == "")
        if operator.endswith("+"):
            return "" if unset else word
        return word if unset else (current or "")

    return _VARIABLE.sub(value, word)


def _expand(path: str, target: Target, state: Optional[_State] = None) -> str:
    """A path as the shell would hand it over: variables, ~ and the working directory applied."""
    if state is not None:
        path = _expand_vars(path, target, state)
    if path == "~" or path.startswith("~/"):
        home = (state and _shell_value("HOME", target, state)) or target.home
        if home:
            path = home + path[1:]
    elif path.startswith("~"):
        path = os.path.expanduser(path)
    cwd = (state.cwd if state is not None else None) or target.cwd
    if not os.path.isabs(path) and cwd:
        path = os.path.join(cwd, path)
    return os.path.normpath(path) if path else path


def _spellings(path: str) -> Set[str]:
    spelled = {os.path.normpath(path)}
    with contextlib.suppress(OSError, ValueError):
        spelled.add(os.path.realpath(path))
    return spelled


# -- one command -----------------------------------------------------------------------------------


def _analyze_text(text: str, target: Target, state: _State, limit: int = MAX_COMMAND_CHARS) -> List[Verdict]:
    verdicts: List[Verdict] = []
    for argv in split_commands(text[:limit]):
        verdicts.extend(_analyze_argv(argv, target, state))
    return verdicts


def _analyze_argv(argv: List[str], target: Target, state: _State) -> List[Verdict]:
    argv, command = _strip_prefixes(argv, target, state)
    if not argv:
        return []
    exe = _expand_vars(argv[0], target, state)
    name = os.path.basename(exe)
    args = argv[1:]
    if name in _DECLARE or name == "unset":
        _declare(name, args, target, state)
        return []
    if name in ("cd", "pushd"):
        _change_directory(args, target, state)
        return []
    if name in ("source", ".") and args:
        if not _note_activation_script(args, target, state):
            # Another script, run by this very shell: its commands are judged as if typed here, but
            # what it changes (variables, activation, directory) is not taken on, as it may not
            # happen (`[ -z "$PS1" ] && return` before `conda activate ~/mine`): never a milder verdict.
            return _analyze_script(args[0], target, state.copy())
        return []
    if name == "deactivate":
        _deactivate(state, "VIRTUAL_ENV")
        return []
    verdicts: List[Verdict] = []
    if name in SHELLS:
        script, path = _shell_invocation(args)
        child = state.child(command.inline, command.cleared)
        if script is not None:
            # Commands inside keep their own entries: a bare `pip` in `bash -c` meets the shims.
            return _analyze_text(script, target, child)
        if path is not None:
            return _analyze_script(path, target, child)  # `bash setup.sh`: what setup.sh runs
        return []
    if name in CONDA_TOOLS or name.startswith("conda-"):
        verdicts = _conda(name, args, target, state, command)
    elif _PIP.match(name):
        verdicts = _pip("pip", args, _python_prefix(exe, target, state, command), target, state, command)
    elif _PYTHON.match(name):
        module, rest = _python_module(args)
        top = (module or "").split(".", 1)[0]
        if top == "pip":
            prefix = _python_prefix(exe, target, state, command)
            verdicts = _pip("pip", rest, prefix, target, state, command)
        elif top in CONDA_TOOLS:
            verdicts = _conda(top, rest, target, state, command)
        elif top == "uv":
            verdicts = _uv(rest, target, state, command)
    elif name == "uv":
        verdicts = _uv(args, target, state, command)
    for verdict in verdicts:
        if not verdict.entry:
            verdict.entry = exe
    return verdicts


def _strip_prefixes(argv: List[str], target: Target, state: _State) -> Tuple[List[str], _Command]:
    """The command after assignments, keywords and wrappers (sudo, env, timeout...)."""
    command = _Command()
    words = list(argv)
    index = 0
    wrapped = False
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word):
            key, _, value = word.partition("=")
            command.inline[key] = _expand_vars(value, target, state)
            index += 1
            continue
        if word in _KEYWORDS:
            index += 1
            continue
        options = _WRAPPERS.get(word)
        if options is None:
            break
        wrapped = True
        index += 1
        while index < len(words) and words[index].startswith("-"):
            option = words[index]
            index += 1
            if option == "--":
                break
            if word == "command" and option in ("-v", "-V"):
                return [], command  # prints where the command is, runs nothing
            if word == "env":
                if option in ("-", "-i", "--ignore-environment"):
                    command.cleared = True
                    command.inline = {}
                elif option in ("-u", "--unset") and index < len(words):
                    command.inline[words[index]] = None
                elif option.startswith("--unset="):
                    command.inline[option.split("=", 1)[1]] = None
                elif option in ("-S", "--split-string") or option.startswith("--split-string="):
                    # env -S 'pip install x': the string is split into the command's words.
                    attached = "=" in option
                    text = option.split("=", 1)[1] if attached else " ".join(words[index : index + 1])
                    after = index if attached else index + 1
                    words = words[: index - 1] + _split_words(text) + words[after:]
                    index -= 1
                    continue
            if option in options:
                index += 1  # the option's value
        if word == "timeout" and index < len(words):
            index += 1  # the duration
    rest = words[index:]
    if not rest and not wrapped:
        # `X=1` alone sets a shell variable for the rest of the chain.
        for key, assigned in command.inline.items():
            state.variables[key] = assigned
            if key == "PATH":
                state.path_changed = True
    return rest, command


def _declare(name: str, args: List[str], target: Target, state: _State) -> None:
    flags = {a for a in args if a.startswith("-")}
    export = name == "export" or any("x" in f for f in flags if not f.startswith("--"))
    for arg in args:
        if arg.startswith("-"):
            continue
        if name == "unset":
            state.variables[arg] = None
            state.exported.discard(arg)
            continue
        key, has_value, value = arg.partition("=")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            continue
        if has_value:
            state.variables[key] = _expand_vars(value, target, state)
            if key == "PATH":
                state.path_changed = True
        if export and "-n" not in flags:
            state.exported.add(key)


def _change_directory(args: List[str], target: Target, state: _State) -> None:
    paths = [a for a in args if not a.startswith("-") or a == "-"]
    if not paths:
        home = _shell_value("HOME", target, state) or target.home
        state.cwd = home or state.cwd
    elif paths[0] != "-":
        state.cwd = _expand(paths[0], target, state)


def _deactivate(state: _State, variable: str) -> None:
    state.active = None
    state.variables.pop(variable, None)


def _activate(prefix: str, variable: str, state: _State) -> None:
    state.active = prefix
    state.path_changed = False
    state.variables[variable] = prefix
    state.exported.add(variable)


def _analyze_script(path: str, target: Target, state: _State) -> List[Verdict]:
    """The verdicts on a shell script's commands, when it is a readable regular file (at most
    ``MAX_FILE_BYTES`` of it, ``MAX_SCRIPT_DEPTH`` scripts deep: a script may source itself)."""
    if state.depth >= MAX_SCRIPT_DEPTH or state.reads[0] <= 0:
        return []
    state.reads[0] -= 1  # shared by every state of one analysis: `. a.sh` ten times reads at most that
    text = read_regular(_expand(path, target, state))
    if text is None:
        return []
    state.depth += 1
    try:
        return _analyze_text(text, target, state, limit=MAX_FILE_BYTES)
    finally:
        state.depth -= 1


def _shell_invocation(args: List[str]) -> Tuple[Optional[str], Optional[str]]:
    """(the command string of ``sh -c STRING``, the script of ``sh FILE``): at most one is set;
    neither for a shell reading its commands from stdin (``sh``, ``sh -s``)."""
    has_c = False
    has_s = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
            continue
        if arg == "--":
            index += 1
            break
        if arg.startswith("--"):
            index += 1
            continue
        if arg[:1] in ("-", "+") and len(arg) > 1:
            letters = arg[1:]
            if arg[0] == "-":
                has_c = has_c or "c" in letters
                has_s = has_s or "s" in letters
            # `-eo pipefail`, `+euO extglob`: o and O take the next word, wherever they are in a group
            index += 2 if ("o" in letters or "O" in letters) else 1
            continue
        break
    if index >= len(args):
        return None, None
    if has_c:
        return args[index], None
    return None, None if has_s else args[index]


def _note_activation_script(args: List[str], target: Target, state: _State) -> bool:
    """Note what ``source .../bin/activate [ENV]`` activates; False for any other script.

    ``source ~/venv/bin/activate`` makes that venv lead PATH; conda's ``source <base>/bin/activate
    ENV`` activates ENV of that installation (its base without an argument).
    """
    path = _expand(args[0], target, state)
    if os.path.basename(path) != "activate" or os.path.basename(os.path.dirname(path)) != "bin":
        return False
    base = os.path.dirname(os.path.dirname(path))
    chosen = args[1] if len(args) > 1 else None
    if chosen is None:
        conda_like = os.path.isdir(os.path.join(base, "conda-meta")) and not os.path.isfile(
            os.path.join(base, "pyvenv.cfg")
        )
        _activate(base, "CONDA_PREFIX" if conda_like else "VIRTUAL_ENV", state)
        return True
    if "/" in chosen or chosen.startswith("~"):
        prefix = _expand(chosen, target, state)
    elif chosen in ("base", "root"):
        prefix = base
    else:
        candidate = os.path.join(base, "envs", chosen)
        prefix = candidate if os.path.isdir(candidate) else _conda_env_prefix(chosen, target, state)
    _activate(prefix, "CONDA_PREFIX", state)
    return True


def _python_module(args: List[str]) -> Tuple[Optional[str], List[str]]:
    """The module of ``python [options] -m MODULE args...`` and its arguments."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-" or not arg.startswith("-") or arg == "--":
            return None, []  # a script, stdin, or the end of the options
        if arg.startswith("--"):
            index += 2 if arg in _PYTHON_LONG_VALUE_OPTIONS else 1
            continue
        position = 1
        skip_value = False
        while position < len(arg):
            char = arg[position]
            if char == "m":
                attached = arg[position + 1 :]
                if attached:
                    return attached, args[index + 1 :]
                if index + 1 < len(args):
                    return args[index + 1], args[index + 2 :]
                return None, []
            if char == "c":
                return None, []
            if char in _PYTHON_VALUE_FLAGS:
                skip_value = position == len(arg) - 1  # `-W ignore` rather than `-Wignore`
                break
            if char not in _PYTHON_FLAGS:
                break
            position += 1
        index += 2 if skip_value else 1
    return None, []


def _exe_prefix(path: str) -> str:
    bindir = os.path.dirname(path)
    if os.path.basename(bindir) in ("bin", "Scripts"):
        return os.path.dirname(bindir)
    return bindir


def _bare_prefix(name: str, target: Target, state: _State, command: _Command) -> str:
    """The environment a bare ``python``/``pip`` found on PATH belongs to."""
    if "PATH" in command.inline:
        path_value = command.inline["PATH"]
    elif state.path_changed:
        path_value = state.variables.get("PATH")
    else:
        path_value = None
    if path_value:
        found = _which(name, path_value, target)
        if found:
            return _exe_prefix(found)
    return state.active or target.prefix


def _which(name: str, path_value: str, target: Target) -> Optional[str]:
    shims = os.path.realpath(target.shims) if target.shims else ""
    for directory in path_value.split(os.pathsep):
        if not directory or (shims and os.path.realpath(directory) == shims):
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_envshare_shim(candidate):
            return candidate
    return None


def _python_prefix(exe: str, target: Target, state: _State, command: _Command) -> str:
    """The environment a python or pip executable belongs to."""
    if "/" not in exe:
        return _bare_prefix(exe, target, state, command)
    return _exe_prefix(_expand(exe, target, state))


def _interpreter_prefix(value: str, target: Target, state: _State, command: _Command) -> str:
    """The environment of ``--python VALUE``: an interpreter path, an environment dir or a name."""
    word = _expand_vars(value, target, state)
    if "/" not in word and not word.startswith("~"):
        return _bare_prefix(word if word.startswith("python") else "python", target, state, command)
    path = _expand(word, target, state)
    if os.path.isdir(path) or not os.path.basename(path).startswith("python"):
        return path
    return _exe_prefix(path)


def _split_options(
    args: Sequence[str], value_options: Iterable[str], long_options: Optional[Iterable[str]] = None
) -> Tuple[List[str], Dict[str, List[str]], List[str]]:
    """(positionals, option -> values, flags) of an argument list.

    ``long_options``: every long option of a tool that, like optparse and argparse, takes an
    unambiguous prefix of one for the option itself; such prefixes are read as the option.
    """
    values = set(value_options)
    known = frozenset(long_options or ())
    positionals: List[str] = []
    options: Dict[str, List[str]] = {}
    flags: List[str] = []
    index = 0
    after_dashes = False
    while index < len(args):
        arg = args[index]
        if known and not after_dashes and arg.startswith("--") and arg != "--":
            name, equals, value = arg.partition("=")
            arg = _unabbreviate(name, known) + equals + value
        if after_dashes or not arg.startswith("-") or arg == "-":
            positionals.append(arg)
        elif arg == "--":
            after_dashes = True
        elif "=" in arg and arg.startswith("--"):
            key, _, value = arg.partition("=")
            options.setdefault(key, []).append(value)
        elif arg in values:
            if index + 1 < len(args):
                options.setdefault(arg, []).append(args[index + 1])
            index += 1
        elif len(arg) > 2 and arg[1] != "-" and arg[:2] in values:
            options.setdefault(arg[:2], []).append(arg[2:])  # -t/path, -rreq.txt
        else:
            flags.append(arg)
        index += 1
    return positionals, options, flags


def _unabbreviate(name: str, known: FrozenSet[str]) -> str:
    """The long option ``name`` stands for: itself, or the one option it is a prefix of."""
    if name in known:
        return name
    matches = [option for option in known if option.startswith(name)]
    # None: not an option of this tool. Several: the tool refuses it as ambiguous.
    return matches[0] if len(matches) == 1 else name


def _after_positional(args: Sequence[str], word: str, value_options: Iterable[str]) -> List[str]:
    """The words after ``word`` and its own options: the command of `conda run` and the like."""
    values = set(value_options)
    index = 0
    while index < len(args) and args[index] != word:
        index += 1
    index += 1
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in values else 1
    return list(args[index:])


def _first(options: Dict[str, List[str]], *names: str) -> Optional[str]:
    for name in names:
        if options.get(name):
            return options[name][-1]
    return None


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in _TRUE


def _read_spec_file(path: str, target: Target, state: Optional[_State] = None) -> List[str]:
    """Requirement names from a requirements or conda spec file, when it is a readable regular file."""
    if not path:
        return []
    text = read_regular(_expand(path, target, state))
    specs: List[str] = []
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-") and not line.startswith("@"):
            specs.append(line)
    return specs


def _read_env_file(
    path: str, target: Target, state: _State
) -> Tuple[Optional[str], Optional[str], List[str]]:
    """(name, prefix, dependency specs) of a conda environment file, when it can be read."""
    text = read_regular(_expand(path, target, state))
    name: Optional[str] = None
    prefix: Optional[str] = None
    specs: List[str] = []
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        match = re.match(r"^(name|prefix):\s*(.+)$", line)
        if match:
            value = match.group(2).strip().strip("'\"")
            if match.group(1) == "name":
                name = value
            else:
                prefix = value
            continue
        item = re.match(r"^\s+-\s+(.+)$", line)
        if item and not item.group(1).endswith(":"):
            specs.append(item.group(1).strip().strip("'\""))
    return name, prefix, specs


# -- the tools -------------------------------------------------------------------------------------


def _conda(tool: str, args: List[str], target: Target, state: _State, command: _Command) -> List[Verdict]:
    positionals, options, flags = _split_options(args, CONDA_VALUE_OPTIONS)
    if not positionals:
        return []
    sub = positionals[0]
    rest = positionals[1:]
    explicit = _conda_explicit_target(options, target, state)
    default = _env_value("CONDA_PREFIX", target, state, command) or target.prefix
    specs: List[str] = []
    if sub == "env":
        if not rest:
            return []
        if rest[0] in CONDA_ENV_MODIFY:
            action = "env " + rest[0]
            where = explicit
            if rest[0] != "remove":
                file_name, file_prefix, specs = _read_env_file(
                    _first(options, "-f", "--file") or "environment.yml", target, state
                )
                if where is None and file_prefix:
                    where = _expand(file_prefix, target, state)
                elif where is None and file_name:
                    where = _conda_env_prefix(file_name, target, state)
            if where is None and rest[0] == "create":
                return [Verdict(False, tool, action, specs, "creates a new environment")]
            where = where or default
        elif rest[0] == "config" and rest[1:2] == ["vars"] and rest[2:3] and rest[2] in ("set", "unset"):
            action = "env config vars " + rest[2]
            where = explicit or default
        else:
            return []  # env list, env export, env config vars list
    elif sub == "config":
        if not CONDA_CONFIG_WRITE.intersection(flags) and not any(
            key in CONDA_CONFIG_WRITE for key in options
        ):
            return []  # --show, --get, --describe, --validate
        if "--env" in flags:
            action, where = "config --env", explicit or default
        elif "--system" in flags:
            action, where = "config --system", _base_prefix(target)
        elif _first(options, "--file"):
            action, where = "config --file", _expand(_first(options, "--file") or "", target, state)
        else:
            return []  # the user's own ~/.condarc
    elif sub == "activate":
        chosen = rest[0] if rest else "base"
        _activate(_conda_env_prefix(chosen, target, state), "CONDA_PREFIX", state)
        return []
    elif sub == "deactivate":
        _deactivate(state, "CONDA_PREFIX")
        return []
    elif sub == "run":
        # `conda run -n ENV cmd...` runs cmd inside ENV: judge cmd with ENV active. Only conda
        # (its shim) sees the inner command, so the verdicts are conda's entry.
        inner = _after_positional(args, "run", CONDA_VALUE_OPTIONS)
        child = state.child(command.inline, command.cleared)
        _activate(explicit or default, "CONDA_PREFIX", child)
        verdicts = _analyze_argv(inner, target, child)
        for verdict in verdicts:
            verdict.entry = ""
        return verdicts
    elif sub in CONDA_MODIFY or sub in ("create", "rename"):
        action = sub
        if sub != "rename":
            specs = list(rest)
            for spec_file in options.get("--file", []):
                specs.extend(_read_spec_file(spec_file, target, state))
        where = explicit
        if where is None and sub == "create":
            return [Verdict(False, tool, action, specs, "creates a new environment")]
        where = where or default
        if sub == "rename" and rest and ("/" in rest[0] or rest[0].startswith("~")):
            destination = _expand(rest[0], target, state)
            if is_shared(destination, target):
                where = destination
    else:
        return []  # list, info, search, clean, export, compare, doctor, ...
    if "-d" in flags or "--dry-run" in flags:
        return [Verdict(False, tool, action, specs, "a dry run changes nothing")]
    if is_shared(where, target):
        return [Verdict(True, tool, action, specs, "it would change the shared environment", where)]
    return [Verdict(False, tool, action, specs, "it targets another environment", where)]


def _conda_explicit_target(options: Dict[str, List[str]], target: Target, state: _State) -> Optional[str]:
    prefix = _first(options, "-p", "--prefix")
    if prefix is not None:
        return _expand(prefix, target, state)
    name = _first(options, "-n", "--name")
    if name is not None:
        return _conda_env_prefix(_expand_vars(name, target, state), target, state)
    return None


def _base_prefix(target: Target) -> str:
    """The installation the shared environment belongs to (``<base>/envs/<env>``)."""
    parent = os.path.dirname(os.path.normpath(target.prefix))
    if os.path.basename(parent) == "envs":
        return os.path.dirname(parent)
    for root in target.roots:
        if os.path.basename(os.path.normpath(root)) == "envs":
            return os.path.dirname(os.path.normpath(root))
    return target.prefix


def _conda_env_prefix(name: str, target: Target, state: Optional[_State] = None) -> str:
    """Where conda puts or finds environment NAME."""
    if "/" in name or name.startswith("~"):
        return _expand(name, target, state)
    if name == target.env:
        return target.prefix
    if name in ("base", "root"):
        return _base_prefix(target)
    configured: List[str] = []
    for variable in ("CONDA_ENVS_DIRS", "CONDA_ENVS_PATH"):
        value = _shell_value(variable, target, state) if state is not None else target.variables.get(variable)
        configured.extend(d for d in re.split(r"[:,]", value or "") if d)
    base_envs = os.path.join(_base_prefix(target), "envs")
    for directory in [*configured, *target.roots, base_envs]:
        candidate = os.path.join(_expand(directory, target, state), name)
        if os.path.isdir(os.path.join(candidate, "conda-meta")):
            return candidate
    # A new environment lands in the first writable envs dir: the installation's own when its
    # permissions are loose, else the user's.
    for directory in [*configured, base_envs]:
        path = _expand(directory, target, state)
        if os.path.isdir(path) and os.access(path, os.W_OK):
            return os.path.join(path, name)
    return os.path.join(target.home or "~", ".conda", "envs", name)


def _pip_arguments(args: List[str]) -> Tuple[Optional[str], List[str]]:
    """pip's subcommand and its other arguments, with abbreviated long options written out.

    An option before the subcommand that is no general option of pip (unknown, or a prefix of
    several) may have taken a value: then the word after the first positional is tried too, so
    that such an option never hides an ``install``.
    """
    general: List[str] = []
    uncertain = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-", "--") or not arg.startswith("-"):
            break
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            name = _unabbreviate(name, PIP_GENERAL_LONG)
            uncertain = uncertain or name not in PIP_GENERAL_LONG
            general.append(name + equals + value)
            if not equals and name in PIP_GENERAL_VALUE_OPTIONS and index + 1 < len(args):
                index += 1
                general.append(args[index])
        else:
            general.append(arg)  # -v, -q, -h, -V: pip's short general options take no value
        index += 1
    rest = args[index:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    if not rest:
        return None, general
    for position, word in enumerate(rest[: 2 if uncertain else 1]):
        if word in PIP_MODIFY:
            known = PIP_SUBCOMMAND_LONG[word]
            after: List[str] = []
            for arg in rest[position + 1 :]:
                if "--" in after or not arg.startswith("--") or arg == "--":
                    after.append(arg)  # positionals, short options, and everything after `--`
                    continue
                name, equals, value = arg.partition("=")
                after.append(_unabbreviate(name, known) + equals + value)
            return word, general + after
    return rest[0], general + rest[1:]


def _pip(
    tool: str,
    args: List[str],
    python_prefix: str,
    target: Target,
    state: _State,
    command: _Command,
) -> List[Verdict]:
    action, args = _pip_arguments(args)
    if action not in PIP_MODIFY:
        return []  # list, show, freeze, check, download, wheel, config, cache, ...
    specs, options, flags = _split_options(args, PIP_VALUE_OPTIONS)
    for requirement in options.get("-r", []) + options.get("--requirement", []):
        specs.extend(_read_spec_file(requirement, target, state))
    specs.extend(options.get("-e", []) + options.get("--editable", []))
    isolated = "--isolated" in flags

    def setting(option_names: Tuple[str, ...], variable: str) -> Optional[str]:
        value = _first(options, *option_names)
        if value is None and not isolated:
            value = _env_value(variable, target, state, command)
        return value or None

    python = setting(("--python",), "PIP_PYTHON")
    if python is not None:
        python_prefix = _interpreter_prefix(python, target, state, command)
    if "--dry-run" in flags:
        return [Verdict(False, tool, action, specs, "a dry run changes nothing")]
    if action == "install":
        elsewhere = setting(("-t", "--target"), "PIP_TARGET")
        if elsewhere is not None:
            return _pip_verdict(tool, action, specs, _expand(elsewhere, target, state), target, "directory")
        root = setting(("--root",), "PIP_ROOT")
        prefix = setting(("--prefix",), "PIP_PREFIX")
        if prefix is not None:
            where = _expand(prefix, target, state)
            return _pip_verdict(tool, action, specs, _rooted(root, where, target, state), target, "directory")
        if "--user" in flags or (not isolated and _truthy(_env_value("PIP_USER", target, state, command))):
            reason = "it would install into ~/.local, which shared kernels ignore (PYTHONNOUSERSITE)"
            return [Verdict(True, tool, action, specs, reason, USER_SITE)]
        if root is not None:
            # --root R installs to R + the interpreter's prefix.
            where = _rooted(root, python_prefix, target, state)
            return _pip_verdict(tool, action, specs, where, target, "directory")
    return _pip_verdict(tool, action, specs, python_prefix, target, "environment")


def _rooted(root: Optional[str], prefix: str, target: Target, state: _State) -> str:
    if root is None:
        return prefix
    return os.path.normpath(_expand(root, target, state).rstrip("/") + "/" + prefix.lstrip("/"))


def _pip_verdict(
    tool: str, action: str, specs: List[str], where: str, target: Target, kind: str
) -> List[Verdict]:
    if is_shared(where, target):
        return [Verdict(True, tool, action, specs, "it would change the shared environment", where)]
    return [Verdict(False, tool, action, specs, f"it targets another {kind}", where)]


def _uv(args: List[str], target: Target, state: _State, command: _Command) -> List[Verdict]:
    positionals, options, flags = _split_options(args, UV_VALUE_OPTIONS)
    if len(positionals) < 2 or positionals[0] != "pip" or positionals[1] not in UV_PIP_MODIFY:
        return []  # uv add/sync/run/venv/tool work on projects and personal environments
    action = positionals[1]
    specs = list(positionals[2:])
    for requirement in options.get("-r", []) + options.get("--requirement", []):
        specs.extend(_read_spec_file(requirement, target, state))
    if "--dry-run" in flags:
        return [Verdict(False, "uv", action, specs, "a dry run changes nothing")]
    elsewhere = _first(options, "-t", "--target", "--prefix")
    python = _first(options, "-p", "--python") or _env_value("UV_PYTHON", target, state, command)
    system = "--system" in flags or _truthy(_env_value("UV_SYSTEM_PYTHON", target, state, command))
    if elsewhere is not None:
        where = _expand(elsewhere, target, state)
    elif python and ("/" in python or python.startswith("~")):
        where = _interpreter_prefix(python, target, state, command)
    elif system or python:
        where = _bare_prefix("python", target, state, command)
    else:
        where = (
            _env_value("VIRTUAL_ENV", target, state, command)
            or _env_value("CONDA_PREFIX", target, state, command)
            or state.active
            or target.prefix
        )
    if is_shared(where, target):
        return [Verdict(True, "uv", action, specs, "it would change the shared environment", where)]
    return [Verdict(False, "uv", action, specs, "it targets another environment", where)]
