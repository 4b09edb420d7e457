"""Rendering the console's pages: one Jinja2 environment, templates shipped in the package.

Autoescaping is on for every template, so anything the engine stored (a run's inputs, an
error's message, a tree's name) is text in the page, never markup. :func:`render` gives each
template what ``base.html`` needs besides the page's own context: the console's base path,
the signed-in user (when there is one), the CSRF token, the navigation and the address of each
static asset (with the package's version in the query, so a new release is not served from a
browser's cache).

Times are shown in UTC in the HTML (``<time datetime=...>``); ``console.js`` rewrites them in
the browser's time zone and keeps the UTC value as the hover title, so a page without script
still says when.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from engine.auth import User
from engine.server.console.csrf import CSRF_FIELD, CSRF_HEADER, csrf_token
from engine.server.console.sessions import console_base

# The navigation, in order: (path under the console, label, for administrators only). A plain
# user is not shown the links its pages would answer 403 to.
NAV = (
    ("runs", "Runs", False),
    ("errors", "Errors", True),
    ("deferred", "Deferred", False),
    ("trees", "Trees", True),
    ("schedules", "Schedules", True),
    ("instances", "Instances", False),
    ("health", "Health", True),
)


def navigation(user: User | None) -> list[tuple[str, str]]:
    """The (path, label) links ``user`` may follow: all of them for an administrator."""
    admin = user is not None and user.is_admin
    return [(path, label) for path, label, admins_only in NAV if admin or not admins_only]


def utc_text(seconds: float | None) -> str:
    """``2026-12-01 16:30:05`` (UTC), or "" for no time."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def when(seconds: float | None) -> Markup:
    """A ``<time>`` element: UTC in the page, the browser's zone once console.js has run."""
    if seconds is None or not math.isfinite(seconds):
        return Markup('<span class="muted">never</span>')
    moment = datetime.fromtimestamp(seconds, UTC)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc_text(seconds)
    return Markup('<time datetime="{0}" title="{1} UTC">{1} UTC</time>').format(iso, text)


def json_text(value: object, indent: int | None = None) -> str:
    """``value`` as JSON text, for a page to show (autoescaped as any text). Jinja's ``tojson``
    is for JSON inside a script element: it writes ``<``, ``>``, ``&`` and ``'`` as ``\\u003c``
    and the like, which a ``<pre>`` would show as they are."""
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def inline_svg(svg: bytes) -> Markup:
    """A picture Graphviz drew (``engine.tree.picture``) as an element of the page, its XML
    prolog and doctype dropped (they cannot stand inside HTML). Safe to inline: Graphviz
    escapes every text of the tree in its SVG, ``engine.tree.picture`` never uses HTML-like
    labels nor lets a name break out of the DOT, and the SVG has no script or style element."""
    text = svg.decode("utf-8")
    return Markup(text[text.index("<svg") :])  # noqa: S704 - Graphviz escaped every text


def query(params: Mapping[str, object], **changes: object) -> str:
    """``?a=1&b=2``: ``params`` with ``changes`` applied, empty values left out."""
    merged = {**params, **changes}
    kept = [(key, str(value)) for key, value in merged.items() if value not in (None, "")]
    return "?" + urlencode(kept) if kept else ""


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("engine.server.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt name fails the page (and its test), not blank
        auto_reload=False,  # the templates are the package's: no stat of each file per page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["utc"] = utc_text
    env.filters["json_text"] = json_text
    env.globals["query"] = query
    env.globals["escape"] = escape
    return env


@cache
def _asset_version() -> str:
    try:
        return version("treeflow")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
        return "0"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` with ``context`` and what every page has, as an HTML response."""
    base = console_base(request)
    user: User | None = getattr(request.state, "console_user", None)
    version = _asset_version()
    page = {
        "request": request,
        "base": base,
        "user": user,
        "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "csrf_token": csrf_token(request),
        "nav": navigation(user),
        "section": request.url.path.removeprefix(base).strip("/").split("/")[0],
        "static": lambda name: f"{base}/static/{name}?v={version}",
        **context,
    }
    body = environment().get_template(template).render(page)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers["Cache-Control"] = "no-store"  # pages show live state and a CSRF token
    return response


__all__ = [
    "NAV",
    "environment",
    "inline_svg",
    "json_text",
    "navigation",
    "query",
    "render",
    "utc_text",
    "when",
]
