"""``treeflow schema``: the JSON Schema of tree files, for editors (``engine.tree.schema``).

``treeflow schema trees/ > trees/tree.schema.json`` writes the schema for the installed handlers
and the routines the trees under ``trees/`` declare (so their callers complete too); a tree file
uses it with ``# yaml-language-server: $schema=tree.schema.json`` on its first line.
"""

from __future__ import annotations

import json

import click

from engine.handlers.registry import HandlerRegistry
from engine.tree.files import routines_in
from engine.tree.schema import tree_schema


def schema_text(paths: tuple[str, ...] = ()) -> str:
    """The schema as the file ``treeflow schema PATHS`` writes: stable JSON, one newline."""
    schema = tree_schema(HandlerRegistry(), routines_in(paths))
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def schema(paths: tuple[str, ...]) -> None:
    """Print the JSON Schema of tree files: the installed handlers, and the routines in PATHS.

    Handler ids are an enum, each handler's parameters (with their menus) are its node's
    parameters; editors with yaml-language-server complete them.
    """
    click.echo(schema_text(paths), nl=False)


__all__ = ["schema", "schema_text"]
