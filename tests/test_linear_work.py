"""Client text costs work linear in its size: the checks that read raw results XML before lxml
does, and what the template sandbox reads of a text to bound an operation on it.

Work is counted, never timed: each check searches through a ``ForwardScan``, whose ``examined``
adds up the characters its searches covered, and a test compares it on inputs of size n and 8n.
One end-to-end test runs the parser on 1 MiB hostile documents in a subprocess that is killed
if it has not finished within a generous deadline, so a quadratic parser fails it instead of
hanging the suite.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.forward_scan import ForwardScan
from engine.results_xml import (
    doctype_in_prolog,
    parse_results,
    straighten_curly_names,
    write_results,
)
from engine.tree.expressions import Expressions
from engine.tree.text_costs import printf_specs

SMALL, LARGE = 8_000, 64_000  # n and 8n
CURLY_TAIL = "<result name=“Note”>x</result></results>"


def _repeated(head: str, unit: str, size: int, tail: str = CURLY_TAIL) -> bytes:
    return (head + unit * (size // len(unit)) + tail).encode()


# Documents built to make a backtracking or re-searching check quadratic, each with a curly
# quote so that the repair runs at all.
HOSTILE = {
    "unclosed-pi": lambda n: _repeated('<results><result name="a">', "<?", n),
    "unclosed-comment": lambda n: _repeated('<results><result name="a">', "<!--", n),
    "unclosed-cdata": lambda n: _repeated('<results><result name="a">', "<![CDATA[", n),
    "result-tags": lambda n: _repeated("<results>", "<result ", n),
    "unclosed-curly-names": lambda n: _repeated("<results>", "<result name=“", n),
    "unclosed-values": lambda n: _repeated("<results>", "<result a='", n),
    "many-attributes": lambda n: _repeated("<results><result", ' a="b"', n, " name=“x”/>"),
    "long-space": lambda n: _repeated("<results><result", " ", n, "name=“x”/></results>"),
    "prolog-space": lambda n: _repeated("", " ", n, "<results/>“"),
    "prolog-pis": lambda n: _repeated("", "<?a?>", n, "<results/>“"),
    "prolog-comments": lambda n: _repeated("", "<!--a-->", n, "<results/>“"),
    "prolog-unclosed": lambda n: _repeated("", "<?<!--", n, "<results/>“"),
}


def _examined(check: Callable[[ForwardScan[bytes]], object], data: bytes) -> int:
    scan = ForwardScan(data)
    check(scan)
    return scan.examined


@pytest.mark.parametrize("check", [straighten_curly_names, doctype_in_prolog])
@pytest.mark.parametrize("document", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_checks_before_parsing_do_work_linear_in_the_document(
    check: Callable[[ForwardScan[bytes]], object], document: Callable[[int], bytes]
) -> None:
    small, large = document(SMALL), document(LARGE)
    work_small, work_large = _examined(check, small), _examined(check, large)

    assert work_small <= 24 * len(small)
    assert work_large <= 24 * len(large)
    assert work_large <= 8.5 * max(work_small, len(small))


_ONE_MIB = r"""
import json
from engine.errors import BadResults
from engine.results_xml import MAX_RESULTS_BYTES, parse_results
reasons = []
for opener in ("<?", "<!--", "<![CDATA["):
    head, tail = '<results><result name="a">', "<result name=“Note”>x</result></results>"
    document = head + opener * ((MAX_RESULTS_BYTES - len(head) - len(tail) - 8) // len(opener))
    try:
        parse_results(document + tail)
    except BadResults as refused:
        reasons.append(refused.reason)
print(json.dumps(reasons))
"""
NOT_WELL_FORMED = "results document is not well-formed: "
REFUSALS = [
    NOT_WELL_FORMED + "xmlParsePI : no target name",
    NOT_WELL_FORMED + "Double hyphen within comment: <!--<!",
    NOT_WELL_FORMED + "CData section not finished\n" + "<![CDATA[" * 5 + "<![CD",
]


def test_a_mebibyte_of_unclosed_markup_with_curly_quotes_is_refused_not_left_running(
    tmp_path: Path,
) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _ONE_MIB],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,  # the linear checks take milliseconds; the quadratic ones took hours
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parsing three 1 MiB hostile documents was still running after 60 s")

    assert json.loads(done.stdout) == REFUSALS


def test_a_curly_name_inside_another_attributes_value_is_left_as_written() -> None:
    # Well-formed: the typographic quotes are content of the single-quoted title.
    document = "<results><result name=\"x\"><result title=' name=“b”'/></result></results>"

    assert parse_results(document) == {"x": '<result title=" name=“b”"/>'}


def test_the_documented_curly_quotes_are_still_straightened() -> None:
    document = '<results>\n<result id="1"\n  name = “Status”>Approved</result></results>'

    assert parse_results(document) == {"Status": "Approved"}


_PIECES = ["a", " ", "“", "”", "<", ">", '"', "'", "name=", "<result name=“", "&"]
_VALUE_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "name", "“x”"]), _VALUE_TEXT, max_size=4))
def test_a_well_formed_document_is_never_changed_by_the_repair(results: dict[str, str]) -> None:
    data = write_results(results).encode()

    assert straighten_curly_names(ForwardScan(data)) == data


# --- templates: what the sandbox reads of a text to bound an operation on it ---------------------

PRINTF = re.compile(r"%(?:\([^)]*\))?([^a-zA-Z%]*)[a-zA-Z%]")  # what printf_specs must find


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("%()a1-. s"), max_size=24))
def test_printf_specs_are_what_the_printf_pattern_finds(text: str) -> None:
    assert printf_specs(ForwardScan(text)) == PRINTF.findall(text)


HOSTILE_FORMATS = {
    "open-keys": lambda n: "%(" * (n // 2),
    "open-keys-then-digits": lambda n: "%(%(" * (n // 8) + ")" + "1" * (n // 2),
    "percents": lambda n: "%" * n,
    "one-long-key": lambda n: "%(" + "(" * n,
    "closed-keys": lambda n: "%(k)5s" * (n // 6),
}


@pytest.mark.parametrize("text", HOSTILE_FORMATS.values(), ids=HOSTILE_FORMATS.keys())
def test_reading_a_printf_template_is_linear_in_its_length(text: Callable[[int], str]) -> None:
    small, large = ForwardScan(text(SMALL)), ForwardScan(text(LARGE))
    printf_specs(small)
    printf_specs(large)

    assert small.examined <= 4 * len(small.data)
    assert large.examined <= 4 * len(large.data)
    assert large.examined <= 8.5 * small.examined


def test_wordwrap_of_a_long_run_is_refused_as_too_much_work() -> None:
    template = Expressions().template("{{ inputs['Text']|wordwrap(5) }}")

    with pytest.raises(ExpressionError, match=r"too much work: more than 8000000 characters"):
        template.render({"inputs": {"Text": " " * 100_000}})


def test_wordwrap_of_ordinary_text_still_wraps() -> None:
    template = Expressions().template("{{ inputs['Text']|wordwrap(11) }}")

    assert template.render({"inputs": {"Text": "lorem ipsum dolor sit amet"}}) == (
        "lorem ipsum\ndolor sit\namet"
    )
