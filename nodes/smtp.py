"""``smtp_email_send_v1``: send an e-mail over SMTP, as Kinetic's handler of that id does.

Parameters and results are those of Kinetic's public ``smtp_email_send_v1`` (``from``, ``to``,
``bcc``, ``subject``, ``htmlbody``, ``textbody``, ``error_handling``; ``Message Id``,
``Handler Error Message``). ``to`` and ``bcc`` may list several addresses, separated by commas.
With both bodies the message is ``multipart/alternative`` (the text first), as mail readers
expect; with neither it is refused.

Kinetic configures the server once per handler ("task info values"); treeflow reads the same
values from the environment of the engine process when the node runs: ``TREEFLOW_SMTP_SERVER``
(required), ``TREEFLOW_SMTP_PORT`` (25), ``TREEFLOW_SMTP_TLS`` (``true``: STARTTLS before
signing in), ``TREEFLOW_SMTP_USERNAME`` / ``TREEFLOW_SMTP_PASSWORD`` (sign in when a user is
given) and ``TREEFLOW_SMTP_TIMEOUT`` (seconds, 30). The password never reaches a tree.

Handlers run at least once, so the Message-ID is derived from the task id: a retry after a crash
sends a message with the same Message-ID, which receiving servers and readers treat as one.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses

from engine.handlers.handler import Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl

from .error_handling import ERROR_HANDLING_PARAMETER, ERROR_RESULT, failed

HANDLER_ID = "smtp_email_send_v1"
RESULTS = ("Message Id", ERROR_RESULT)
SETTINGS = "TREEFLOW_SMTP_"
_TRUE = ("true", "yes", "1")


class _Refused(Exception):
    """A reason to fail the node, said in the words the result or the Handler Error shows."""


def _addresses(context: HandlerContext, name: str, *, required: bool) -> list[str]:
    text = context.parameters.get(name, "").strip()
    if not text:
        if required:
            raise _Refused(f"parameter {name!r} is empty: give at least one e-mail address")
        return []
    found = []
    pieces = [piece.strip() for piece in text.split(",")]
    parsed = getaddresses([text])
    for number, (display, address) in enumerate(parsed):
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            shown = pieces[number] if len(pieces) == len(parsed) else text
            raise _Refused(f"parameter {name!r}: {shown!r} is not an e-mail address")
        found.append(str(Address(display, addr_spec=address)) if display else address)
    return found


def _setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(SETTINGS + name, default)
    if value is None or value == "":
        raise _Refused(f"the SMTP server is not configured: set {SETTINGS}{name}")
    return value


def _number(name: str, default: str) -> float:
    text = _setting(name, default)
    try:
        value = float(text)
    except ValueError:
        raise _Refused(f"{SETTINGS}{name} is {text!r}, not a number") from None
    if value <= 0:
        raise _Refused(f"{SETTINGS}{name} is {text!r}; it must be positive")
    return value


def _message(context: HandlerContext) -> EmailMessage:
    sender = _addresses(context, "from", required=True)
    if len(sender) != 1:
        raise _Refused("parameter 'from' must be one e-mail address")
    to = _addresses(context, "to", required=True)
    text = context.parameters.get("textbody", "")
    html = context.parameters.get("htmlbody", "")
    if not text and not html:
        raise _Refused("both 'htmlbody' and 'textbody' are empty: the message has no body")
    message = EmailMessage()
    try:
        message["From"] = sender[0]
        message["To"] = ", ".join(to)
        message["Subject"] = context.parameters.get("subject", "")
    except ValueError as exc:  # a line break in a header: refused, never injected
        raise _Refused(f"a header cannot be written: {exc}") from None
    domain = sender[0].rpartition("@")[2].rstrip(">")
    message["Message-ID"] = f"<{context.task_id}.treeflow@{domain}>"
    message.set_content(text or "")
    if html:
        if text:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    return message


def _send(context: HandlerContext) -> Mapping[str, str]:
    try:
        message = _message(context)
        bcc = _addresses(context, "bcc", required=False)
        server, port = _setting("SERVER"), int(_number("PORT", "25"))
        timeout = _number("TIMEOUT", "30")
        tls = os.environ.get(SETTINGS + "TLS", "false").strip().lower() in _TRUE
        username = os.environ.get(SETTINGS + "USERNAME", "")
        with smtplib.SMTP(server, port, timeout=timeout) as smtp:
            if tls:
                smtp.starttls(context=ssl.create_default_context())
            if username:
                smtp.login(username, os.environ.get(SETTINGS + "PASSWORD", ""))
            recipients = [a for _, a in getaddresses([message["To"], *bcc])]
            smtp.send_message(message, to_addrs=recipients)
    except _Refused as exc:
        return failed(context, HANDLER_ID, str(exc), RESULTS)
    except (OSError, smtplib.SMTPException) as exc:
        where = os.environ.get(SETTINGS + "SERVER", "")
        reason = f"sending through {where}:{os.environ.get(SETTINGS + 'PORT', '25')} failed: {exc}"
        return failed(context, HANDLER_ID, reason, RESULTS)
    return {"Message Id": str(message["Message-ID"]), ERROR_RESULT: ""}


SMTP_EMAIL_SEND = Handler(
    definition_id=HANDLER_ID,
    execute=_send,
    parameters=(
        ERROR_HANDLING_PARAMETER,
        Parameter("from", required=True, description="the sender's address"),
        Parameter("to", required=True, description="recipients, separated by commas"),
        Parameter("bcc", default="", description="hidden recipients, separated by commas"),
        Parameter("subject", default=""),
        Parameter("htmlbody", default="", description="the HTML body"),
        Parameter("textbody", default="", description="the plain-text body (or alternative)"),
    ),
    results=RESULTS,
    description="Sends an e-mail through the SMTP server TREEFLOW_SMTP_SERVER names.",
)


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return [SMTP_EMAIL_SEND]
