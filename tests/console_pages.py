"""What the console page tests share: a browser-like client signed in through the sign-in
form (cookies kept, redirects not followed), pages parsed with lxml, and the CSRF token a
page's forms carry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import lxml.html

from engine import Engine

from .live_server import PASSWORD, Live, live_server

CONSOLE = "/console"


@contextmanager
def console_server(engine: Engine, **users: str) -> Iterator[Live]:
    """A live server over ``engine`` with ``users`` (name: role) added, for a test's pages."""
    with live_server(engine) as server:
        for name, role in users.items():
            server.add_user(name, role)
        yield server


@contextmanager
def signed_in(live: Live, name: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client signed in to the console as ``name``, as a browser would be."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        form = client.get(f"{CONSOLE}/sign-in")
        assert form.status_code == 200, form.text
        token = csrf_of(lxml.html.fromstring(form.text))
        response = client.post(
            f"{CONSOLE}/sign-in",
            data={"username": name, "password": password, "csrf_token": token},
        )
        assert response.status_code == 303, response.text
        yield client


def page(client: httpx.Client, path: str, status: int = 200) -> lxml.html.HtmlElement:
    """The console page at ``path`` (under /console), parsed; its status checked."""
    response = client.get(f"{CONSOLE}{path}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return lxml.html.fromstring(response.text)


def csrf_of(document: lxml.html.HtmlElement) -> str:
    """The CSRF token the page's forms send back."""
    [token, *_] = document.xpath("//input[@name='csrf_token']/@value")
    return str(token)


def text_of(document: lxml.html.HtmlElement, xpath: str) -> list[str]:
    """The whitespace-normalised text of each element ``xpath`` finds."""
    return [" ".join(element.text_content().split()) for element in document.xpath(xpath)]


__all__ = ["CONSOLE", "console_server", "csrf_of", "page", "signed_in", "text_of"]
