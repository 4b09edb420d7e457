"""Forms the console's pages post: read as the API reads its forms, the CSRF field allowed.

:func:`read_page_form` is :func:`engine.server.forms.read_form` (a missing, repeated or unknown
field is a :class:`~engine.errors.BadRequest` naming it, shown as a 400 page) with the hidden
``csrf_token`` field, which :func:`~engine.server.console.csrf.check_csrf` has already checked,
accepted and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from engine.server.console.csrf import CSRF_FIELD
from engine.server.forms import FormSpec, read_form


async def read_page_form(
    request: Request, required: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, str]:
    spec = FormSpec(required=tuple(required), optional=(*optional, CSRF_FIELD))
    fields = await read_form(request, spec, max_bytes=request.app.state.settings.max_body_bytes)
    fields.pop(CSRF_FIELD, None)
    return fields


__all__ = ["read_page_form"]
