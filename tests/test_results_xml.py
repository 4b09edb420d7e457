"""Results XML: the shape Kinetic sends, the values it carries, and the documents refused."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from engine import results_xml
from engine.errors import BadResults
from engine.results_xml import (
    MAX_RESULTS_BYTES,
    parse_results,
    parse_xml,
    safe_xml_parser,
    write_results,
)

# The createDeferred example of the Kinetic Task REST API, character for character.
SEED_RESULTS = "<results><result name=“Status”>Approved</result></results>"
SEED_PAYLOAD = (
    "action=Complete&token=AG005056960051rJQmUQPmxIWAUXYJ&results=%3Cresults%3E%3Cresult+name"
    "%3D%E2%80%9CStatus%E2%80%9D%3EApproved%3C%2Fresult%3E%3C%2Fresults%3E&"
)
SECRET = "treeflow-secret-3f9c2e"

LAUGH = "&lol{};"
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol0 "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{LAUGH.format(i - 1) * 10}">\n' for i in range(1, 10))
    + ']>\n<results><result name="a">&lol9;</result></results>'
)

Parse = Callable[[str | bytes], object]
PARSERS = pytest.mark.parametrize("parse", [parse_results, parse_xml], ids=["results", "xml"])


def refusal(parse: Parse, document: str | bytes) -> BadResults:
    with pytest.raises(BadResults) as info:
        parse(document)
    return info.value


# --- the shape Kinetic sends -------------------------------------------------------------------


def test_seed_example_with_typographic_quotes_is_accepted_verbatim() -> None:
    assert parse_results(SEED_RESULTS) == {"Status": "Approved"}


def test_seed_payload_decodes_to_the_seed_example_and_parses() -> None:
    (results,) = parse_qs(SEED_PAYLOAD)["results"]
    assert results == SEED_RESULTS
    assert parse_results(results) == {"Status": "Approved"}


def test_typographic_quotes_are_accepted_in_utf8_bytes_and_after_other_attributes() -> None:
    document = '<results>\n<result id="1" name=“Status”>Approved</result></results>'
    assert parse_results(document.encode()) == {"Status": "Approved"}


def test_typographic_quotes_inside_cdata_are_content_and_kept() -> None:
    document = '<results><result name="a"><![CDATA[<result name=“x”>]]></result></results>'
    assert parse_results(document) == {"a": "<result name=“x”>"}


def test_typographic_quotes_on_another_attribute_are_not_rewritten() -> None:
    error = refusal(parse_results, '<results><result name="a" x=“b”>v</result></results>')
    assert "AttValue" in error.reason
    assert (error.line, error.column) == (1, 29)


def test_typographic_quotes_in_a_value_are_kept() -> None:
    document = '<results><result name="q">he said “yes”</result></results>'
    assert parse_results(document) == {"q": "he said “yes”"}


@pytest.mark.parametrize(
    "document",
    [None, "", b"", "  \n\t ", b"\r\n "],
    ids=["none", "empty-str", "empty-bytes", "blank-str", "blank-bytes"],
)
def test_no_document_means_no_results(document: str | bytes | None) -> None:
    assert parse_results(document) == {}


def test_results_keep_document_order() -> None:
    document = (
        "<results>\n"
        '  <result name="Zulu">1</result>\n'
        '  <result name="Alpha">2</result>\n'
        '  <result name="Mike">3</result>\n'
        "</results>"
    )
    assert list(parse_results(document).items()) == [("Zulu", "1"), ("Alpha", "2"), ("Mike", "3")]


def test_empty_results_element_gives_no_results() -> None:
    assert parse_results("<results/>") == {}


@pytest.mark.parametrize(
    "element", ['<result name="a"/>', '<result name="a"></result>'], ids=["self-closed", "open"]
)
def test_empty_result_is_an_empty_string(element: str) -> None:
    assert parse_results(f"<results>{element}</results>") == {"a": ""}


def test_whitespace_in_a_value_is_kept() -> None:
    assert parse_results('<results><result name="a">  x\n y </result></results>') == {
        "a": "  x\n y "
    }


# --- the values results carry ------------------------------------------------------------------


def test_nested_xml_value_is_serialized_back_to_xml() -> None:
    document = (
        '<results><result name="Approvers">'
        '<list><item id="1">Ann</item><item id="2">Bo &amp; Cy</item></list>'
        "</result></results>"
    )
    assert parse_results(document) == {
        "Approvers": '<list><item id="1">Ann</item><item id="2">Bo &amp; Cy</item></list>'
    }


def test_mixed_content_keeps_text_and_tails() -> None:
    document = '<results><result name="m">before <b>bold</b> middle <i/> after</result></results>'
    assert parse_results(document) == {"m": "before <b>bold</b> middle <i/> after"}


def test_escaped_markup_in_a_value_is_read_as_text() -> None:
    document = '<results><result name="a">1 &lt; 2 &amp;&amp; 3 &gt; 2</result></results>'
    assert parse_results(document) == {"a": "1 < 2 && 3 > 2"}


def test_cdata_value_is_read_as_text() -> None:
    document = '<results><result name="a"><![CDATA[<b>not markup</b> & co]]></result></results>'
    assert parse_results(document) == {"a": "<b>not markup</b> & co"}


def test_comments_and_processing_instructions_are_ignored() -> None:
    document = (
        "<!-- before --><?app hint?><results><!-- among -->"
        '<result name="a">Appr<!-- inside -->oved<?pi x?></result><?app y?>'
        "</results>"
    )
    assert parse_results(document) == {"a": "Approved"}


def test_str_with_an_encoding_declaration_is_parsed() -> None:
    document = (
        '<?xml version="1.0" encoding="UTF-8"?><results><result name="a">é</result></results>'
    )
    assert parse_results(document) == {"a": "é"}


def test_str_is_read_as_text_whatever_encoding_it_declares() -> None:
    document = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><results><result name="a">é€</result></results>'
    )
    assert parse_results(document) == {"a": "é€"}


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [("UTF-8", "utf-8"), ("ISO-8859-1", "latin-1"), ("UTF-16", "utf-16")],
    ids=["utf-8", "latin-1", "utf-16"],
)
def test_bytes_honour_their_encoding_declaration(encoding: str, codec: str) -> None:
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?><results><result name="é">ü</result></results>'
    )
    assert parse_results(document.encode(codec)) == {"é": "ü"}


def test_parse_xml_returns_the_root_element() -> None:
    root = parse_xml("<items><item>a</item><item>b</item></items>")
    assert root.tag == "items"
    assert [item.text for item in root] == ["a", "b"]


def test_parsing_builds_no_parser_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_new_parsers(*args: object, **kwargs: object) -> etree.XMLParser:
        raise AssertionError("a parser was built on the hot path")

    monkeypatch.setattr(results_xml.etree, "XMLParser", no_new_parsers)
    assert parse_results('<results><result name="a">1</result></results>') == {"a": "1"}
    assert parse_results(b'<results><result name="a">2</result></results>') == {"a": "2"}
    assert parse_xml("<x/>").tag == "x"


def test_safe_xml_parser_is_one_shared_parser() -> None:
    assert isinstance(safe_xml_parser(), etree.XMLParser)
    assert safe_xml_parser() is safe_xml_parser()


def test_the_shared_parser_gives_right_answers_from_many_threads() -> None:
    documents = [f'<results><result name="n">{i}</result></results>' for i in range(2000)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parsed = list(pool.map(parse_results, documents))
    assert parsed == [{"n": str(i)} for i in range(2000)]


# --- documents of the wrong shape --------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "found"),
    [
        ("<result name='a'>x</result>", "'result'"),
        ("<response><results/></response>", "'response'"),
        ("<Results/>", "'Results'"),
        ("<results xmlns='urn:x'/>", "'{urn:x}results'"),
    ],
    ids=["a-single-result", "wrapped", "capitalized", "namespaced"],
)
def test_root_other_than_results_is_refused_naming_it(document: str, found: str) -> None:
    with pytest.raises(BadResults, match=rf"the root element is {found}, expected 'results'"):
        parse_results(document)


@pytest.mark.parametrize(
    ("child", "found"),
    [
        ("<item name='a'>x</item>", "'item'"),
        ("<results/>", "'results'"),
        ("<Result name='a'/>", "'Result'"),
    ],
    ids=["item", "nested-results", "capitalized"],
)
def test_child_other_than_result_is_refused_naming_it_and_its_line(child: str, found: str) -> None:
    document = f"<results>\n<result name='ok'/>\n{child}\n</results>"
    with pytest.raises(BadResults, match=rf"element {found} at line 3 is not a 'result'"):
        parse_results(document)


@pytest.mark.parametrize(
    "element",
    ["<result>x</result>", "<result name=''>x</result>", "<result title='a'>x</result>"],
    ids=["missing", "empty", "other-attribute"],
)
def test_result_without_a_name_is_refused_with_its_line(element: str) -> None:
    with pytest.raises(BadResults, match=r"the result at line 2 has a missing or empty name"):
        parse_results(f"<results>\n{element}</results>")


def test_name_given_twice_is_refused_naming_it() -> None:
    document = (
        "<results>\n<result name='Status'>a</result>\n<result name='Status'>b</result></results>"
    )
    with pytest.raises(BadResults, match=r"result 'Status' is given twice \(again at line 3\)"):
        parse_results(document)


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ("<results>stray<result name='a'/></results>", "before the first result: 'stray'"),
        ("<results><result name='a'/> stray </results>", "after result 'a': 'stray'"),
    ],
    ids=["before", "after"],
)
def test_text_outside_any_result_is_refused(document: str, where: str) -> None:
    with pytest.raises(BadResults, match=rf"text outside any result {where}"):
        parse_results(document)


@pytest.mark.parametrize(
    ("document", "message", "line", "column"),
    [
        (
            "<results>\n  <result name='a'>x</resul>\n</results>",
            "Opening and ending tag mismatch: result line 2 and resul",
            2,
            29,
        ),
        (
            "<results><result name='a'>x</result>",
            "Premature end of data in tag results line 1",
            1,
            37,
        ),
        ("<results><result name='a'>&foo;</result></results>", "Entity 'foo' not defined", 1, 32),
        ("<results><result name=a>x</result></results>", "AttValue: \" or ' expected", 1, 23),
        ("<results></results><results/>", "Extra content at the end of the document", 1, 20),
        (
            "<results><result name='a'>x < y</result></results>",
            "StartTag: invalid element name",
            1,
            30,
        ),
        ("<results>\x01</results>", "PCDATA invalid Char value 1", 1, 10),
        ('<?xml version="1.0"?>', "Start tag expected, '<' not found", 1, 22),
        ("not xml at all", "Start tag expected, '<' not found", 1, 1),
    ],
    ids=[
        "tag-mismatch",
        "unclosed",
        "undefined-entity",
        "unquoted-attribute",
        "two-roots",
        "bare-less-than",
        "control-character",
        "declaration-only",
        "plain-text",
    ],
)
def test_malformed_document_is_refused_with_line_and_column(
    document: str, message: str, line: int, column: int
) -> None:
    error = refusal(parse_results, document)
    assert error.reason == f"results document is not well-formed: {message}"
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"Invalid results XML at line {line}, column {column}: ")


def test_parse_xml_names_the_document_in_its_errors() -> None:
    with pytest.raises(BadResults, match=r"loop data document is not well-formed: Opening and"):
        parse_xml("<a></b>", what="loop data")


def test_unencodable_str_is_refused_naming_the_character() -> None:
    with pytest.raises(BadResults, match=r"character XML cannot carry at index 9: '\\ud800'"):
        parse_results("<results>\ud800</results>")


# --- hostile documents -------------------------------------------------------------------------

DOCTYPE_REFUSED = r"document has a DOCTYPE; DTDs and entity declarations are refused"


@PARSERS
@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><results>&x;</results>',
        '<!DOCTYPE results SYSTEM "http://127.0.0.1:9/results.dtd"><results/>',
        '<!DOCTYPE r [<!ENTITY % pe SYSTEM "file:///etc/passwd"> %pe;]><results/>',
        "<!DOCTYPE r [<!ENTITY % pe \"<!ENTITY x 'boom'>\"> %pe;]><results>&x;</results>",
        "<!DOCTYPE results><results/>",
        "\ufeff<?xml version='1.0'?>\n<!-- hello -->\n<?pi x?>\n<!DOCTYPE results []><results/>",
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "external-dtd",
        "external-parameter-entity",
        "internal-parameter-entity",
        "bare-doctype",
        "doctype-after-prolog",
    ],
)
def test_any_doctype_is_refused(parse: Parse, document: str) -> None:
    assert DOCTYPE_REFUSED in refusal(parse, document).reason
    assert DOCTYPE_REFUSED in refusal(parse, document.encode()).reason


@PARSERS
def test_doctype_in_a_utf16_document_is_refused_after_parsing(parse: Parse) -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    assert DOCTYPE_REFUSED in refusal(parse, document.encode("utf-16")).reason


def test_external_entity_refusal_shows_nothing_of_etc_passwd() -> None:
    document = (
        '<!DOCTYPE results [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<results><result name="a">&x;</result></results>'
    )
    error = refusal(parse_results, document)
    shown = f"{error!s} {error!r} {error.reason}"
    passwd = Path("/etc/passwd").read_text(encoding="utf-8")
    assert [line for line in passwd.splitlines() if line and line in shown] == []
    assert "root:" not in shown


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file whose access time is the epoch, so reading it shows (on atime-keeping disks)."""
    control = tmp_path / "control.txt"
    control.write_text("x", encoding="utf-8")
    os.utime(control, (0, control.stat().st_mtime))
    control.read_bytes()
    if control.stat().st_atime == 0:
        pytest.skip("this file system does not record access times")
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    os.utime(secret, (0, secret.stat().st_mtime))
    return secret


@PARSERS
@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE results [<!ENTITY x SYSTEM "{uri}">]><results>&x;</results>',
        '<!DOCTYPE results [<!ENTITY x SYSTEM "{uri}">]><results a="&x;"/>',
        '<!DOCTYPE results [<!ENTITY % pe SYSTEM "{uri}"> %pe;]><results/>',
        '<!DOCTYPE results SYSTEM "{uri}"><results/>',
    ],
    ids=["entity-in-text", "entity-in-attribute", "parameter-entity", "external-dtd"],
)
def test_refusing_an_external_file_never_reads_it(
    parse: Parse, codec: str, body: str, secret_file: Path
) -> None:
    declaration = f'<?xml version="1.0" encoding="{codec.upper()}"?>'
    document = (declaration + body.format(uri=secret_file.as_uri())).encode(codec)
    error = refusal(parse, document)
    # libxml2 itself refuses an external entity in an attribute before the DOCTYPE check runs.
    assert DOCTYPE_REFUSED in error.reason or "references external entity 'x'" in error.reason
    assert SECRET not in str(error)
    assert secret_file.stat().st_atime == 0


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A loopback server nobody should connect to: a connection would wait in its backlog.

    (lxml 6 ships libxml2 without an HTTP client, so today this guards against a future build.)
    """
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


@PARSERS
@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE results SYSTEM "{url}"><results/>',
        '<!DOCTYPE results [<!ENTITY x SYSTEM "{url}">]><results>&x;</results>',
        '<!DOCTYPE results [<!ENTITY % pe SYSTEM "{url}"> %pe;]><results/>',
    ],
    ids=["external-dtd", "external-entity", "parameter-entity"],
)
def test_refusing_a_network_reference_never_connects(
    parse: Parse, codec: str, body: str, listening_socket: socket.socket
) -> None:
    port = listening_socket.getsockname()[1]
    declaration = f'<?xml version="1.0" encoding="{codec.upper()}"?>'
    document = (declaration + body.format(url=f"http://127.0.0.1:{port}/x.dtd")).encode(codec)
    assert DOCTYPE_REFUSED in refusal(parse, document).reason
    with pytest.raises(BlockingIOError):
        listening_socket.accept()


@PARSERS
def test_deeply_nested_document_is_refused_at_lxml_depth_limit(parse: Parse) -> None:
    error = refusal(parse, "<a>" * 10_000 + "</a>" * 10_000)
    assert "Excessive depth in document: 256" in error.reason
    assert (error.line, error.column) == (1, 771)


def test_nesting_within_the_limit_is_accepted() -> None:
    value = "<a>" * 200 + "</a>" * 200
    assert parse_results(f'<results><result name="deep">{value}</result></results>') == {
        "deep": "<a>" * 199 + "<a/>" + "</a>" * 199
    }


# --- size cap ----------------------------------------------------------------------------------


def test_default_cap_is_one_mebibyte() -> None:
    assert MAX_RESULTS_BYTES == 1_048_576


@PARSERS
@pytest.mark.parametrize(
    ("document", "size"),
    [
        (b"<" * 2_000_000, "2000000 bytes"),
        ("<" * 2_000_000, "2000000 bytes"),
        ("é" * 2_000_000, "at least 2000000 bytes"),
        ("é" * 600_000, "1200000 bytes"),
    ],
    ids=["bytes", "ascii-str", "huge-non-ascii-str", "non-ascii-str-over-in-bytes"],
)
def test_oversized_document_is_refused_before_parsing_with_limit_and_size(
    parse: Parse, document: str | bytes, size: str
) -> None:
    error = refusal(parse, document)
    assert error.reason.endswith(f"document is {size}, over the limit of 1048576 bytes")
    assert error.line is None


def test_cap_can_be_lowered_per_call() -> None:
    document = '<results><result name="a">' + "x" * 100 + "</result></results>"
    assert len(document) == 145
    with pytest.raises(BadResults, match=r"results document is 145 bytes, over the limit of 144"):
        parse_results(document, max_bytes=144)
    assert parse_results(document, max_bytes=145) == {"a": "x" * 100}


def test_size_is_checked_before_the_whitespace_shortcut() -> None:
    with pytest.raises(BadResults, match=r"is 11 bytes, over the limit of 10 bytes"):
        parse_results(" " * 11, max_bytes=10)


# --- writing -----------------------------------------------------------------------------------


def test_write_results_writes_the_kinetic_shape() -> None:
    assert write_results({"Status": "Approved", "Note": ""}) == (
        '<results><result name="Status">Approved</result><result name="Note"></result></results>'
    )


def test_write_results_escapes_markup_in_names_and_values() -> None:
    written = write_results({'a"<&': "<b>x & y</b>"})
    assert written == (
        '<results><result name="a&quot;&lt;&amp;">&lt;b&gt;x &amp; y&lt;/b&gt;</result></results>'
    )
    assert parse_results(written) == {'a"<&': "<b>x & y</b>"}


def test_write_results_keeps_insertion_order() -> None:
    written = write_results({"z": "1", "a": "2", "m": "3"})
    assert list(parse_results(written)) == ["z", "a", "m"]


def test_write_results_of_nothing_is_an_empty_results_element() -> None:
    assert write_results({}) == "<results/>"
    assert parse_results(write_results({})) == {}


def test_write_results_refuses_an_empty_name() -> None:
    with pytest.raises(BadResults, match=r"a result name must not be empty"):
        write_results({"": "x"})


@pytest.mark.parametrize(
    ("results", "name"),
    [({"a": "nul\x00"}, "'a'"), ({"b\x01": "x"}, "'b\\\\x01'"), ({"c": "\x1b[0m"}, "'c'")],
    ids=["nul-in-value", "control-in-name", "escape-in-value"],
)
def test_write_results_refuses_strings_xml_cannot_carry(results: dict[str, str], name: str) -> None:
    with pytest.raises(BadResults, match=rf"result {name} cannot be written as XML"):
        write_results(results)


_XML_ILLEGAL = "".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])) + "\ufffe\uffff"
_XML_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters=_XML_ILLEGAL)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(_XML_TEXT, min_size=1, max_size=20), st.text(_XML_TEXT), max_size=8))
def test_write_then_parse_round_trips(results: dict[str, str]) -> None:
    written = write_results(results)
    parsed = parse_results(written)
    assert parsed == results
    assert list(parsed) == list(results)
