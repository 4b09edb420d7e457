"""The HTTP layer's pure parts: page caps and header values."""

from __future__ import annotations

import pytest

from engine import BadRequest
from engine.server.formats import header_value
from engine.server.limits import page_bounds


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [(None, None, (50, 0)), (1, 0, (1, 0)), (500, 10, (500, 10))],
    ids=["defaults", "smallest", "the-cap"],
)
def test_page_bounds_within_the_cap(
    limit: int | None, offset: int | None, expected: tuple[int, int]
) -> None:
    assert page_bounds(limit, offset, max_limit=500) == expected


@pytest.mark.parametrize(
    ("limit", "offset", "match"),
    [
        (501, 0, r"^Invalid limit: must be between 1 and 500, not 501$"),
        (0, 0, r"^Invalid limit: must be between 1 and 500, not 0$"),
        (10, -1, r"^Invalid offset: must be 0 or more, not -1$"),
        (10, 2**31, r"^Invalid offset: must be at most 2147483647, not 2147483648$"),
    ],
    ids=["over-the-cap", "zero", "negative-offset", "offset-over-any-id"],
)
def test_page_bounds_refuse_naming_the_parameter(limit: int, offset: int, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        page_bounds(limit, offset, max_limit=500)


def test_the_default_page_is_never_over_a_smaller_cap() -> None:
    assert page_bounds(None, None, max_limit=20) == (20, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ASCII", "plain ASCII"),
        ("“curly” é", "\\u201ccurly\\u201d \\u00e9"),
        ("line\r\nX-Injected: 1", "line\\u000d\\u000aX-Injected: 1"),
        ("x" * 2000, "x" * 1021 + "..."),
    ],
    ids=["ascii", "non-ascii", "crlf-injection", "long"],
)
def test_header_values_are_printable_ascii_and_bounded(text: str, expected: str) -> None:
    assert header_value(text) == expected
