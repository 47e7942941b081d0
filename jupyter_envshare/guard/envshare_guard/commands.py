"""Which package commands would change the shared environment: shell text and argv -> verdicts.

A command is judged by its *target*: ``conda install`` with no ``-n``/``-p`` changes the active
environment (the shared one), ``pip install --target ~/lib`` does not. Read-only subcommands
(``list``, ``show``, ``freeze``, ``info``, ``search``, ``env export``, ``config --show``) pass.
Everything here is pure string work: it runs inside kernels (stdlib only, Python >= 3.8) and in the
PATH shims, and must never raise on odd input.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

CONDA_TOOLS = ("conda", "mamba", "micromamba")
CONDA_MODIFY = {"install", "update", "upgrade", "remove", "uninstall"}
CONDA_ENV_MODIFY = {"update", "remove"}
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
}
PIP_MODIFY = {"install", "uninstall"}
PIP_VALUE_OPTIONS = {
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
    "--log",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--report",
    "-C",
    "--config-settings",
    "--global-option",
    "--no-binary",
    "--only-binary",
    "--python",
    "--group",
    "--root-user-action",
    "--keyring-provider",
    "--use-feature",
    "--use-deprecated",
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
# Words that only prefix the real command.
_WRAPPERS = {
    "sudo",
    "env",
    "command",
    "builtin",
    "exec",
    "nohup",
    "time",
    "nice",
    "stdbuf",
    "xargs",
    "then",
    "do",
    "else",
    "elif",
    "if",
    "while",
    "until",
    "!",
    "{",
    "}",
}
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "\n", "|&"}
_REDIRECTS = re.compile(r"^\d*(>>?|<<?<?|>&|<&|&>>?)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_PIP = re.compile(r"^pip(\d+(\.\d+)?)?$")
# A requirement a person could ask admins for: a name, optional extras and version constraints.
_REQUESTABLE = re.compile(
    r"^(?:[A-Za-z0-9_.\-]+::)?[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9_,.\- ]*\])?"
    r"\s*(?:(?:==|>=|<=|!=|~=|>|<|=)\s*[A-Za-z0-9*._+!\-]+\s*,?\s*)*$"
)
_NAME = re.compile(r"^(?:[A-Za-z0-9_.\-]+::)?([A-Za-z0-9][A-Za-z0-9._\-]*)")
MAX_COMMAND_CHARS = 100000


@dataclass
class Target:
    """Where package commands of this kernel land unless told otherwise."""

    env: str
    prefix: str
    roots: Sequence[str] = ()
    home: str = ""
    cwd: str = ""


@dataclass
class Verdict:
    """The judgement on one package command."""

    blocked: bool
    tool: str
    action: str
    specs: List[str]
    reason: str
    target: str = ""


@dataclass
class _State:
    """What earlier commands of a chain changed: an activated venv or conda env."""

    active: Optional[str] = None  # prefix made active by `source .../activate` or `conda activate`
    variables: Dict[str, str] = field(default_factory=dict)


def analyze(text: str, target: Target) -> List[Verdict]:
    """Verdicts on every package command in shell text (a `!` line, a %%bash cell, a bash -c)."""
    verdicts: List[Verdict] = []
    state = _State()
    for argv in split_commands(text[:MAX_COMMAND_CHARS]):
        verdicts.extend(_analyze_argv(argv, target, state))
    return verdicts


def analyze_argv(argv: Sequence[str], target: Target) -> List[Verdict]:
    """Verdicts on one command given as an argument vector (from a PATH shim)."""
    return _analyze_argv(list(argv), target, _State())


def blocked(verdicts: Iterable[Verdict]) -> List[Verdict]:
    """The verdicts that stop the command."""
    return [v for v in verdicts if v.blocked]


def requestable(specs: Iterable[str]) -> List[str]:
    """The specs a person can request (names and version constraints, no paths, URLs or vars)."""
    seen: List[str] = []
    for spec in specs:
        text = spec.strip()
        if text and _REQUESTABLE.match(text) and text not in seen:
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


# -- shell text -> argv lists ----------------------------------------------------------------------


def split_commands(text: str) -> List[List[str]]:
    """Simple commands of shell text, split at ;, &&, ||, |, & and newlines; quoting respected."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    commands: List[List[str]] = []
    for line in _logical_lines(joined):
        current: List[str] = []
        skip_next = False
        for token in _tokens(line):
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
    # Newlines inside quotes belong to the command; others separate commands.
    lines: List[str] = []
    buf: List[str] = []
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char == "\n":
            lines.append("".join(buf))
            buf = []
            continue
        buf.append(char)
    lines.append("".join(buf))
    return [line for line in lines if line.strip()]


def _tokens(line: str) -> List[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: judge the words as they stand
        return line.split()


# -- one command -----------------------------------------------------------------------------------


def _analyze_argv(argv: List[str], target: Target, state: _State) -> List[Verdict]:
    argv = _strip_prefixes(argv, state)
    if not argv:
        return []
    exe = argv[0]
    name = os.path.basename(exe)
    args = argv[1:]
    if name in ("source", ".") and args:
        _note_activation_script(args[0], target, state)
        return []
    if name in ("bash", "sh", "zsh", "dash") and len(args) >= 2 and args[0] in ("-c", "-lc", "-ec"):
        nested = _State(active=state.active)
        verdicts: List[Verdict] = []
        for inner in split_commands(args[1]):
            verdicts.extend(_analyze_argv(inner, target, nested))
        return verdicts
    if name in CONDA_TOOLS or name.startswith("conda-"):
        return _conda(name, args, target, state)
    if _PIP.match(name):
        return _pip("pip", args, _python_prefix(exe, target, state), target)
    if _PYTHON.match(name):
        module, rest = _python_module(args)
        if module == "pip":
            return _pip("pip", rest, _python_prefix(exe, target, state), target)
        if module in CONDA_TOOLS:
            return _conda(module, rest, target, state)
        if module == "uv":
            return _uv(rest, target, state)
        return []
    if name == "uv":
        return _uv(args, target, state)
    return []


def _strip_prefixes(argv: List[str], state: _State) -> List[str]:
    index = 0
    while index < len(argv):
        word = argv[index]
        if _ASSIGNMENT.match(word):
            key, _, value = word.partition("=")
            state.variables[key] = value
            if key in ("VIRTUAL_ENV", "CONDA_PREFIX") and value:
                state.active = value
            index += 1
        elif word == "timeout":
            index += 1
            while index < len(argv) and argv[index].startswith("-"):
                index += 1
            index += 1  # the duration
        elif word in _WRAPPERS:
            index += 1
            # Options of sudo/env/nice/xargs (e.g. `sudo -u x`, `env -i`) come before the command.
            while index < len(argv) and argv[index].startswith("-"):
                index += 1
        else:
            break
    return argv[index:]


def _note_activation_script(script: str, target: Target, state: _State) -> None:
    # `source ~/venv/bin/activate` makes that venv the target of later pip commands.
    path = _expand(script, target)
    if os.path.basename(path) == "activate" and os.path.basename(os.path.dirname(path)) == "bin":
        state.active = os.path.dirname(os.path.dirname(path))


def _python_module(args: List[str]) -> Tuple[Optional[str], List[str]]:
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-m" and index + 1 < len(args):
            return args[index + 1], args[index + 2 :]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:], args[index + 1 :]
        if arg in ("-c",) or not arg.startswith("-"):
            return None, []
        index += 1
    return None, []


def _python_prefix(exe: str, target: Target, state: _State) -> str:
    """The environment a python or pip executable belongs to."""
    if "/" not in exe:
        return state.active or target.prefix
    path = _expand(exe, target)
    bindir = os.path.dirname(path)
    if os.path.basename(bindir) in ("bin", "Scripts"):
        return os.path.dirname(bindir)
    return bindir


def _expand(path: str, target: Target) -> str:
    if path.startswith("~") and target.home:
        path = target.home + path[1:]
    if not os.path.isabs(path) and target.cwd:
        path = os.path.join(target.cwd, path)
    return os.path.normpath(path)


def _is_shared(path: str, target: Target) -> bool:
    """Whether a prefix is the shared environment or lies in a shared installation."""
    if not path:
        return False
    candidates = {os.path.normpath(path)}
    with contextlib.suppress(OSError, ValueError):
        candidates.add(os.path.realpath(path))
    shared = [target.prefix, *target.roots]
    for place in shared:
        if not place:
            continue
        place = os.path.normpath(place)
        for candidate in candidates:
            if candidate == place or candidate.startswith(place.rstrip("/") + "/"):
                return True
    return False


def _split_options(
    args: Sequence[str], value_options: Iterable[str]
) -> Tuple[List[str], Dict[str, List[str]], List[str]]:
    """(positionals, option -> values, flags) of an argument list."""
    values = set(value_options)
    positionals: List[str] = []
    options: Dict[str, List[str]] = {}
    flags: List[str] = []
    index = 0
    after_dashes = False
    while index < len(args):
        arg = args[index]
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


def _read_spec_file(path: str, target: Target) -> List[str]:
    """Requirement names from a requirements or conda spec file, when it can be read."""
    specs: List[str] = []
    try:
        with open(_expand(path, target), encoding="utf-8", errors="replace") as fh:
            for raw in fh.read(200000).splitlines():
                line = raw.split("#", 1)[0].strip()
                if line and not line.startswith("-") and not line.startswith("@"):
                    specs.append(line)
    except OSError:
        pass
    return specs


# -- the tools -------------------------------------------------------------------------------------


def _conda(tool: str, args: List[str], target: Target, state: _State) -> List[Verdict]:
    positionals, options, flags = _split_options(args, CONDA_VALUE_OPTIONS)
    if not positionals:
        return []
    command = positionals[0]
    rest = positionals[1:]
    if command == "env":
        if not rest or rest[0] not in CONDA_ENV_MODIFY:
            return []
        action = "env " + rest[0]
        specs = _read_spec_file(_first(options, "-f", "--file") or "", target) if rest[0] == "update" else []
    elif command == "activate":
        chosen = rest[0] if rest else "base"
        state.active = _conda_env_prefix(chosen, target)
        return []
    elif command == "deactivate":
        state.active = None
        return []
    elif command == "run":
        # `conda run -n ENV cmd...` runs cmd inside ENV: judge cmd with ENV active.
        inner = _after_positional(args, "run", CONDA_VALUE_OPTIONS)
        chosen_prefix = _first(options, "-p", "--prefix")
        chosen_name = _first(options, "-n", "--name")
        if chosen_prefix is not None:
            active: Optional[str] = _expand(chosen_prefix, target)
        elif chosen_name is not None:
            active = _conda_env_prefix(chosen_name, target)
        else:
            active = state.active
        return _analyze_argv(inner, target, _State(active=active or target.prefix))
    elif command in CONDA_MODIFY or command == "create":
        action = command
        specs = list(rest)
        for spec_file in options.get("--file", []):
            specs.extend(_read_spec_file(spec_file, target))
    else:
        return []  # list, info, search, config, run, clean, export, ...
    if "-d" in flags or "--dry-run" in flags:
        return [Verdict(False, tool, action, specs, "a dry run changes nothing")]
    prefix = _first(options, "-p", "--prefix")
    name = _first(options, "-n", "--name")
    if prefix is not None:
        where = _expand(prefix, target)
    elif name is not None:
        where = _conda_env_prefix(name, target)
    elif command == "create":
        return [Verdict(False, tool, action, specs, "creates a new environment")]
    else:
        where = state.active or target.prefix
    if _is_shared(where, target):
        return [Verdict(True, tool, action, specs, "it would change the shared environment", where)]
    return [Verdict(False, tool, action, specs, "it targets another environment", where)]


def _conda_env_prefix(name: str, target: Target) -> str:
    if "/" in name or name.startswith("~"):
        return _expand(name, target)
    if name in ("base", "root") or name == target.env:
        return target.prefix if name == target.env else (target.roots[0] if target.roots else target.prefix)
    for root in target.roots:
        candidate = os.path.join(root, name)
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(target.home or "~", ".conda", "envs", name)


def _pip(tool: str, args: List[str], python_prefix: str, target: Target) -> List[Verdict]:
    positionals, options, flags = _split_options(args, PIP_VALUE_OPTIONS)
    if not positionals or positionals[0] not in PIP_MODIFY:
        return []  # list, show, freeze, check, download, wheel, config, cache, ...
    action = positionals[0]
    specs = list(positionals[1:])
    for requirement in options.get("-r", []) + options.get("--requirement", []):
        specs.extend(_read_spec_file(requirement, target))
    specs.extend(options.get("-e", []) + options.get("--editable", []))
    if "--dry-run" in flags:
        return [Verdict(False, tool, action, specs, "a dry run changes nothing")]
    elsewhere = _first(options, "-t", "--target", "--prefix", "--root")
    if elsewhere is not None:
        where = _expand(elsewhere, target)
        if _is_shared(where, target):
            return [Verdict(True, tool, action, specs, "it would write into the shared installation", where)]
        return [Verdict(False, tool, action, specs, "it installs into another directory", where)]
    if "--user" in flags:
        return [
            Verdict(
                True,
                tool,
                action,
                specs,
                "it would install into ~/.local, which shared kernels ignore (PYTHONNOUSERSITE)",
                "~/.local",
            )
        ]
    if _is_shared(python_prefix, target):
        return [Verdict(True, tool, action, specs, "it would change the shared environment", python_prefix)]
    return [Verdict(False, tool, action, specs, "it targets another environment", python_prefix)]


def _uv(args: List[str], target: Target, state: _State) -> List[Verdict]:
    positionals, options, flags = _split_options(args, UV_VALUE_OPTIONS)
    if len(positionals) < 2 or positionals[0] != "pip" or positionals[1] not in UV_PIP_MODIFY:
        return []  # uv add/sync/run/venv/tool work on projects and personal environments
    action = positionals[1]
    specs = list(positionals[2:])
    for requirement in options.get("-r", []) + options.get("--requirement", []):
        specs.extend(_read_spec_file(requirement, target))
    if "--dry-run" in flags:
        return [Verdict(False, "uv", action, specs, "a dry run changes nothing")]
    elsewhere = _first(options, "-t", "--target", "--prefix")
    python = _first(options, "-p", "--python")
    if elsewhere is not None:
        where = _expand(elsewhere, target)
    elif python is not None and ("/" in python or python.startswith("~")):
        where = _python_prefix(python, target, state)
    elif "--system" in flags or python is not None:
        where = target.prefix
    else:
        where = state.active or state.variables.get("VIRTUAL_ENV") or target.prefix
    if _is_shared(where, target):
        return [Verdict(True, "uv", action, specs, "it would change the shared environment", where)]
    return [Verdict(False, "uv", action, specs, "it targets another environment", where)]
