"""Safe reading and writing of Kinetic "results" XML documents.

A results document, ``<results><result name="Status">Approved</result></results>``, arrives
from outside (the ``results`` parameter of createStart and createDeferred), so every parse goes
through one hardened lxml parser, built once at import because parsing sits on the trigger hot
path: no entity resolution, no network, no DTD loading, lxml's default size and depth limits.
On top of that, any DOCTYPE at all is refused (defusedxml's rule): a results document never
needs one, and refusing it closes internal entity expansion ("billion laughs"), external
entities, parameter entities and external DTDs with one check that reads no file and opens no
socket. The byte size is capped before lxml sees the document. Comments and processing
instructions are dropped by the parser.

A result's value is its whole inner content, child elements serialized back to XML with their
tails, because Kinetic passes XML documents (lists to loop over) inside results.

One tolerance: Kinetic's own documentation (the createDeferred example) writes
``<result name=“Status”>``, with typographic quotes (U+201C, U+201D) around the attribute value.
That exact pattern, a ``name`` attribute of a ``<result`` start tag quoted ``“...”`` (outside
comments, CDATA sections and processing instructions, and outside other attributes' values), is
rewritten to ASCII quotes before parsing, so the documented example is accepted verbatim. It is
malformed XML otherwise, so no well-formed document is ever changed, and nothing else is
rewritten.

The checks that read the raw document before lxml does (that repair, and the search for a
DOCTYPE in the prolog) are searches over a :class:`~engine.forward_scan.ForwardScan`, each
starting where the last one stopped: they read each byte a bounded number of times whatever the
document holds (an unclosed ``<?``, ``<!--`` or ``<![CDATA[`` repeated a million times
included), so their work is linear in the document's size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import cast

from lxml import etree

from engine.errors import BadResults
from engine.forward_scan import ForwardScan

MAX_RESULTS_BYTES: int = 1_048_576

_BOM = b"\xef\xbb\xbf"
_LEFT_QUOTE = "“".encode()
_SPACE = re.compile(rb"\s*")
# What may come before a DOCTYPE (besides whitespace), each with its end.
_PROLOG_MARKUP = ((b"<!--", b"-->"), (b"<?", b"?>"))
# Markup whose inside is content, not markup: skipped whole (an unclosed one runs to the end).
_CONTENT_MARKUP = dict((*_PROLOG_MARKUP, (b"<![CDATA[", b"]]>")))
# What the repair looks at: content markup to skip, and <result start tags.
_REPAIR_MARKUP = re.compile(rb"<(?:!--|!\[CDATA\[|\?|result(?=\s))")
# One attribute of a start tag: its name and its value, quoted "...", '...' or “...” (the
# tolerance). Nothing in it matches "<", so a tag's attributes are read before the next "<";
# each part stops at the first character that ends it, so reading one attribute after another
# reads each byte of the tag a bounded number of times.
_ATTRIBUTE = re.compile(
    rb"\s+([^\s=<>/\"']+)\s*=\s*"
    rb"(?:\"[^\"<]*\"|'[^'<]*'|(\xe2\x80\x9c)[^<>\"]*?(\xe2\x80\x9d))"
)


def _build_parser(encoding: str | None) -> etree.XMLParser:
    return etree.XMLParser(
        encoding=encoding,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


# bytes honour their own XML declaration. A str is already decoded: it is encoded to UTF-8 and
# parsed as UTF-8 whatever its declaration says (lxml refuses a str that carries one).
_BYTES_PARSER = _build_parser(None)
_STR_PARSER = _build_parser("utf-8")


def safe_xml_parser() -> etree.XMLParser:
    """The shared hardened parser for bytes input (built once; lxml locks it per parse)."""
    return _BYTES_PARSER


def parse_xml(
    document: str | bytes, *, max_bytes: int = MAX_RESULTS_BYTES, what: str = "XML"
) -> etree._Element:
    """Parse an untrusted XML document safely and return its root element.

    ``what`` names the document in error messages. Raises :class:`BadResults` for a document
    over ``max_bytes`` (checked before parsing), any DOCTYPE (so any DTD or entity declaration),
    or malformed XML (with the line and column lxml reports).
    """
    data, parser = _to_bytes(document, max_bytes, what)
    return _parse(data, parser, what)


def parse_results(
    document: str | bytes | None, *, max_bytes: int = MAX_RESULTS_BYTES
) -> dict[str, str]:
    """Read a results document into ``{name: value}``, in document order.

    ``None``, empty or whitespace-only means no results. Raises :class:`BadResults` for
    anything :func:`parse_xml` refuses, a root other than ``results``, a child other than
    ``result``, a result without a name, or a name given twice.
    """
    if document is None:
        return {}
    data, parser = _to_bytes(document, max_bytes, "results")
    if not data or data.isspace():
        return {}
    if _LEFT_QUOTE in data:
        data = straighten_curly_names(ForwardScan(data))
    return _read_results(_parse(data, parser, "results"))


def write_results(results: Mapping[str, str]) -> str:
    """Write ``{name: value}`` as a results document, in the mapping's order.

    Values are text: markup in them is escaped, so they read back unchanged. Raises
    :class:`BadResults` for an empty name or a string XML cannot carry (NUL, most controls).
    """
    root = etree.Element("results")
    for name, value in results.items():
        if not name:
            raise BadResults(reason="a result name must not be empty")
        try:
            etree.SubElement(root, "result", name=name).text = value
        except ValueError as exc:
            raise BadResults(reason=f"result {name!r} cannot be written as XML: {exc}") from None
    return cast(str, etree.tostring(root, encoding="unicode"))


def _to_bytes(document: str | bytes, max_bytes: int, what: str) -> tuple[bytes, etree.XMLParser]:
    """The document as bytes within the size cap, with the parser that fits its type."""
    if isinstance(document, bytes):
        _check_size(len(document), max_bytes, what, exact=True)
        return document, _BYTES_PARSER
    # Every character is at least one byte: refuse a huge str without encoding it first.
    _check_size(len(document), max_bytes, what, exact=document.isascii())
    try:
        data = document.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadResults(
            reason=f"{what} document has a character XML cannot carry at index {exc.start}: "
            f"{document[exc.start : exc.end]!r}"
        ) from None
    _check_size(len(data), max_bytes, what, exact=True)
    return data, _STR_PARSER


def _check_size(size: int, max_bytes: int, what: str, *, exact: bool) -> None:
    if size > max_bytes:
        bound = "" if exact else "at least "
        raise BadResults(
            reason=f"{what} document is {bound}{size} bytes, over the limit of {max_bytes} bytes"
        )


def _parse(data: bytes, parser: etree.XMLParser, what: str) -> etree._Element:
    if doctype_in_prolog(ForwardScan(data)):
        raise _doctype_refused(what)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        message = exc.msg.removesuffix(f", line {line}, column {column}")
        raise BadResults(
            reason=f"{what} document is not well-formed: {message}", line=line, column=column
        ) from None
    if root.getroottree().docinfo.doctype:
        raise _doctype_refused(what)
    return root


def _doctype_refused(what: str) -> BadResults:
    return BadResults(
        reason=f"{what} document has a DOCTYPE; DTDs and entity declarations are refused"
    )


def doctype_in_prolog(scan: ForwardScan[bytes]) -> bool:
    """Whether a DOCTYPE comes before the root element, where one can only be: after an
    optional BOM, whitespace, the XML declaration, comments and processing instructions.

    Covers ASCII-compatible encodings; the docinfo check after parsing covers the others
    (UTF-16 and friends). An unclosed comment or instruction ends the prolog: it is malformed.
    """
    position = len(_BOM) if scan.at(_BOM, 0) else 0
    while True:
        space = scan.match(_SPACE, position)
        position = space.end() if space is not None else position
        for opener, closer in _PROLOG_MARKUP:
            if scan.at(opener, position):
                close = scan.find(closer, position + len(opener))
                if close < 0:
                    return False
                position = close + len(closer)
                break
        else:
            return scan.at(b"<!DOCTYPE", position)


def straighten_curly_names(scan: ForwardScan[bytes]) -> bytes:
    """The document with each ``<result ... name=“...”>`` rewritten to ``name="..."``.

    Markup is read left to right, each piece found once: a comment, CDATA section or
    processing instruction is skipped to its end (an unclosed one holds the rest of the
    document, so nothing after it is markup); a ``<result`` start tag is read attribute by
    attribute, so a ``name=“`` inside another attribute's value is never taken for one.
    """
    data = scan.data
    pieces: list[bytes] = []
    copied = position = 0
    while (markup := scan.search(_REPAIR_MARKUP, position)) is not None:
        closer = _CONTENT_MARKUP.get(markup.group())
        if closer is not None:
            close = scan.find(closer, markup.end())
            if close < 0:
                break
            position = close + len(closer)
            continue
        tag_end = scan.find(b"<", markup.end())
        tag_end = len(data) if tag_end < 0 else tag_end
        position = markup.end()
        while (attribute := scan.match(_ATTRIBUTE, position, tag_end)) is not None:
            position = attribute.end()
            if attribute.group(1) == b"name" and attribute.group(2) is not None:
                pieces += [data[copied : attribute.start(2)], b'"']
                pieces += [data[attribute.end(2) : attribute.start(3)], b'"']
                copied = attribute.end(3)
        position = tag_end
    return b"".join([*pieces, data[copied:]])


def _read_results(root: etree._Element) -> dict[str, str]:
    if root.tag != "results":
        raise BadResults(reason=f"the root element is {root.tag!r}, expected 'results'")
    _refuse_stray_text(root.text, "before the first result")
    results: dict[str, str] = {}
    for element in root:
        name = _result_name(element)
        if name in results:
            raise BadResults(
                reason=f"result {name!r} is given twice (again at line {element.sourceline})"
            )
        results[name] = _inner_xml(element)
        _refuse_stray_text(element.tail, f"after result {name!r}")
    return results


def _result_name(element: etree._Element) -> str:
    if element.tag != "result":
        raise BadResults(
            reason=f"element {element.tag!r} at line {element.sourceline} is not a 'result'"
        )
    name = element.get("name")
    if not name:
        raise BadResults(
            reason=f"the result at line {element.sourceline} has a missing or empty name"
        )
    return str(name)


def _refuse_stray_text(text: str | None, where: str) -> None:
    if text and not text.isspace():
        raise BadResults(reason=f"text outside any result {where}: {text.strip()[:40]!r}")


def _inner_xml(element: etree._Element) -> str:
    """The element's content as XML text: its text, then each child with its tail."""
    text = element.text or ""
    if len(element) == 0:
        return text
    return text + "".join(etree.tostring(child, encoding="unicode") for child in element)


__all__ = [
    "MAX_RESULTS_BYTES",
    "doctype_in_prolog",
    "parse_results",
    "parse_xml",
    "safe_xml_parser",
    "straighten_curly_names",
    "write_results",
]
