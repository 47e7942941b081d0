"""The advice shown when a command is stopped, and the demand events the guard records."""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Sequence

from .commands import Verdict, package_names, requestable
from .context import GuardContext

MIME_TYPE = "application/vnd.envshare.advice+json"
SPOOL_FILE = "events.jsonl"  # the same spool the provisioner writes launch events to
MAX_SHOWN_COMMAND = 300
MAX_SPECS = 50  # a command naming thousands of packages gets advice about the first ones

DEFAULT_TEMPLATE = """\
**`{env}` is a shared, read-only environment: {outcome}**

{reason_sentence} It is managed by {contact} and used by everyone on this server, so it only
changes through its spec, for everybody at once.

- **Need {packages} here?** Ask for it with the *Request this* button below, or run
  `{request_command}`
- **Need it right now?** Make a personal environment and a kernel for it:
  `conda create -p ~/envs/mine python ipykernel {specs_plain}` then
  `~/envs/mine/bin/python -m ipykernel install --user --name mine`
"""


def outcome(mode: str) -> str:
    """What happened to the command, in the words of the advice."""
    if mode == "warn":
        return "the command below runs anyway (the guard only warns here)."
    return "the command below was stopped and nothing was changed."


def render(context: GuardContext, verdicts: Sequence[Verdict], command: str) -> Dict[str, Any]:
    """The display bundle: text fallback, Markdown and the advice MIME payload."""
    specs: List[str] = []
    for verdict in verdicts:
        specs.extend(verdict.specs)
    wanted = requestable(specs)[:MAX_SPECS]
    names = package_names(wanted)
    shown = command.strip()
    if len(shown) > MAX_SHOWN_COMMAND:
        shown = shown[:MAX_SHOWN_COMMAND] + " ..."
    quoted = " ".join(_shell_quote(s) for s in wanted) or "SPEC"
    request_command = f'%envshare request {quoted} --reason "what you need it for"'
    reasons = sorted({v.reason for v in verdicts})
    fields = {
        "env": _code_safe(context.env),
        "outcome": outcome(context.mode),
        "reason_sentence": f"`{_code_safe(shown)}` was intercepted: {'; '.join(reasons)}.",
        "contact": _md_escape(context.contact),
        "packages": ", ".join(f"`{_code_safe(n)}`" for n in names) or "a package",
        "specs_plain": _code_safe(" ".join(_shell_quote(s) for s in wanted)),
        "request_command": _code_safe(request_command),
    }
    template = context.template or DEFAULT_TEMPLATE
    try:
        markdown = template.format(**fields)
    except (KeyError, IndexError, ValueError):  # an admin's template with an unknown field
        markdown = DEFAULT_TEMPLATE.format(**fields)
    text = markdown.replace("**", "")
    payload = {
        "env": context.env,
        "specs": wanted,
        "packages": names,
        "command": shown,
        "mode": context.mode,
        "contact": context.contact,
        "request_url": context.request_url,
        "reason": "; ".join(reasons),
    }
    return {"text/plain": text, "text/markdown": markdown, MIME_TYPE: payload}


def record_attempt(context: GuardContext, verdicts: Sequence[Verdict], via: str) -> None:
    """Count an intercepted attempt per env and package; never the command's text."""
    specs: List[str] = []
    for verdict in verdicts:
        specs.extend(verdict.specs)
    tools = sorted({v.tool for v in verdicts})
    actions = sorted({v.action for v in verdicts})
    record_event(
        context,
        "install-attempt",
        env=context.env,
        packages=package_names(specs),
        tool=",".join(tools),
        action=",".join(actions),
        mode=context.mode,
        via=via,
    )


def record_event(context: GuardContext, kind: str, **fields: Any) -> bool:
    """Append one event to the user's spool; False when it cannot be written (never raises)."""
    if not context.spool:
        return False
    event = {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "user": context.user,
        "host": socket.gethostname(),
    }
    event.update(fields)
    line = (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
    try:
        os.makedirs(context.spool, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(context.spool, SPOOL_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


def _shell_quote(spec: str) -> str:
    return (
        spec if all(c.isalnum() or c in "._-=:[]," for c in spec) else "'" + spec.replace("'", "'\\''") + "'"
    )


def _code_safe(text: str) -> str:
    # Inside a Markdown code span: a backtick would end it, a newline would break the list.
    return text.replace("`", "'").replace("\r", " ").replace("\n", " ")


def _md_escape(text: str) -> str:
    out = []
    for char in text.replace("\n", " "):
        out.append("\\" + char if char in "\\`*_{}[]<>()#+!|" else char)
    return "".join(out)
