"""Kinetic's CSV / JSON / XML utilities: ``utility_csv_to_json_v1``, ``utility_csv_to_xml_v1``,
``utility_json_to_xml_v1``, with the ids, parameters, results and output shapes of Kinetic's
public utility handlers, so that trees reading their results keep working:

- CSV to JSON (``csv`` -> ``JSON``): the first row is the header, each further row an object of
  header to value, all under ``table``: ``{"table": [{"Name": "Ada", "Age": "36"}]}``. Values
  stay strings; a short row leaves its missing columns out. A header with an empty or repeated
  name, or a row with more values than the header, is refused naming the row.
- CSV to XML (``csv`` -> ``XML``): every value of every row, in order, as an item of a list,
  ``<list><item>Ada</item>...</list>``, the shape a loop head's ``//list/item`` walks.
- JSON to XML (``json`` -> ``XML``): each JSON value is a ``<node>`` whose ``type`` is the Ruby
  class Kinetic's handler names (``Object``, ``Array``, ``String``, ``Integer``, ``Float``,
  ``TrueClass``, ``FalseClass``, ``NilClass``) and whose ``name`` is its key in an object.

Bad input (CSV that does not parse, JSON that is not JSON) fails the node with a Handler Error
naming the parameter and the place. The XML is written by the standard library's ElementTree,
indented by two spaces; nothing is parsed as XML here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET  # writes XML only; nothing is parsed

from engine.errors import HandlerFailed
from engine.handlers.handler import Execute, Handler, HandlerContext, Parameter
from engine.handlers.hookspecs import hookimpl

CSV_TO_JSON = "utility_csv_to_json_v1"
CSV_TO_XML = "utility_csv_to_xml_v1"
JSON_TO_XML = "utility_json_to_xml_v1"


def _rows(handler: str, text: str) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(text.strip()), strict=True) if row]
    except csv.Error as exc:
        raise HandlerFailed(handler=handler, reason=f"parameter 'csv' is not CSV: {exc}") from None


def _xml(element: ET.Element) -> str:
    ET.indent(element, space="  ")
    return ET.tostring(element, encoding="unicode")


def _csv_to_json(context: HandlerContext) -> Mapping[str, str]:
    rows = _rows(CSV_TO_JSON, context.parameters["csv"])
    if not rows:
        return {"JSON": json.dumps({"table": []})}
    header, table = rows[0], []
    if any(name == "" for name in header):
        raise HandlerFailed(handler=CSV_TO_JSON, reason="Invalid CSV: the header has an empty name")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        reason = f"Invalid CSV: the header repeats {', '.join(map(repr, repeated))}"
        raise HandlerFailed(handler=CSV_TO_JSON, reason=reason)
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            reason = f"Invalid CSV: row {number} has {len(row)} values for {len(header)} columns"
            raise HandlerFailed(handler=CSV_TO_JSON, reason=reason)
        table.append(dict(zip(header, row, strict=False)))
    return {"JSON": json.dumps({"table": table}, ensure_ascii=False)}


def _csv_to_xml(context: HandlerContext) -> Mapping[str, str]:
    listing = ET.Element("list")
    for row in _rows(CSV_TO_XML, context.parameters["csv"]):
        for value in row:
            ET.SubElement(listing, "item").text = value
    return {"XML": _xml(listing)}


def _ruby_class(value: Any) -> str:
    if value is None:
        return "NilClass"
    if isinstance(value, bool):
        return "TrueClass" if value else "FalseClass"
    return {int: "Integer", float: "Float"}.get(type(value), "String")


def _node(value: Any, name: str | None = None) -> ET.Element:
    element = ET.Element("node")
    if isinstance(value, dict):
        element.set("type", "Object")
        children = [_node(item, str(key)) for key, item in value.items()]
    elif isinstance(value, list):
        element.set("type", "Array")
        children = [_node(item) for item in value]
    else:
        element.set("type", _ruby_class(value))
        children = []
        if value is not None:  # Ruby's nil.to_s is ""
            element.text = str(value).lower() if isinstance(value, bool) else str(value)
    if name is not None:
        element.set("name", name)
    element.extend(children)
    return element


def _json_to_xml(context: HandlerContext) -> Mapping[str, str]:
    try:
        data = json.loads(context.parameters["json"])
    except ValueError as exc:
        reason = f"parameter 'json' is not JSON: {exc}"
        raise HandlerFailed(handler=JSON_TO_XML, reason=reason) from None
    return {"XML": _xml(_node(data))}


def _conversion(
    definition_id: str, execute: Execute, given: str, returned: str, description: str
) -> Handler:
    """A conversion: one required text parameter in, one result out."""
    return Handler(
        definition_id=definition_id,
        execute=execute,
        parameters=(Parameter(given, required=True),),
        results=(returned,),
        description=description,
    )


CONVERSIONS = [
    _conversion(CSV_TO_JSON, _csv_to_json, "csv", "JSON",
                'Converts CSV with a header row to JSON: {"table": [{header: value}, ...]}.'),
    _conversion(CSV_TO_XML, _csv_to_xml, "csv", "XML",
                "Lists every CSV value as <list><item>value</item>...</list>."),
    _conversion(JSON_TO_XML, _json_to_xml, "json", "XML",
                'Converts JSON to <node type="Object|Array|String|..." name="key"> XML.'),
]  # fmt: skip


@hookimpl
def treeflow_node_handlers() -> Sequence[Handler]:
    return CONVERSIONS
