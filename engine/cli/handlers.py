"""``treeflow handlers``: the node handlers installed here, with their parameters and results.

The handlers are the ones an engine started here would have: the built-in nodes and every
plugin installed through the ``treeflow.plugins`` entry point. A routine is a handler too once
its tree is loaded; ``--trees`` adds the routines of those files. ``treeflow handlers ID`` shows
one handler in full; ``--json`` prints the same for scripts (keys in ``engine.cli.output``).
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from engine.cli.output import handler_json, json_option, print_json
from engine.cli.support import console
from engine.handlers.handler import Handler, Parameter
from engine.handlers.registry import HandlerRegistry
from engine.tree.files import routines_in
from engine.tree.routines import call_handler
from engine.tree.suggest import did_you_mean


def _installed(trees: str | None) -> dict[str, Handler]:
    registry = HandlerRegistry()
    found = {definition_id: registry.get(definition_id) for definition_id in registry.ids}
    handlers = {key: handler for key, handler in found.items() if handler is not None}
    if trees:
        for definition_id, signature in routines_in([trees]).items():
            handlers.setdefault(definition_id, call_handler(signature, {}))
    return dict(sorted(handlers.items()))


def _parameter(parameter: Parameter) -> str:
    text = parameter.name + (" (required)" if parameter.required else "")
    if parameter.default not in (None, ""):
        text += f" = {parameter.default!r}"
    if parameter.menu:
        text += f" [{' | '.join(parameter.menu)}]"
    return text


def _print_one(handler: Handler) -> None:
    console.print(Text(handler.definition_id, style="bold"), highlight=False)
    if handler.description:
        console.print(Text(handler.description), highlight=False)
    kind = handler.behaviour.value + (", defers" if handler.deferrable else "")
    console.print(Text(f"Behaviour: {kind}"), highlight=False)
    table = Table(show_header=True, header_style="bold", title="Parameters")
    table.add_column("Name", overflow="fold")
    table.add_column("Required", no_wrap=True)
    table.add_column("Default", overflow="fold")
    table.add_column("Description", overflow="fold", ratio=2)
    for parameter in handler.parameters:
        menu = f" (one of {', '.join(parameter.menu)})" if parameter.menu else ""
        table.add_row(
            Text(parameter.name),
            "yes" if parameter.required else "no",
            Text(parameter.default or ""),
            Text(parameter.description + menu),
        )
    console.print(table)
    console.print(Text(f"Results: {', '.join(handler.results) or 'none declared'}"))


@click.command("handlers")
@click.argument("handler_id", required=False)
@click.option(
    "--trees",
    envvar="TREEFLOW_TREES",
    show_envvar=True,
    type=click.Path(exists=True),
    help="Also list the routines these tree files declare.",
)
@json_option
def handlers(handler_id: str | None, trees: str | None, as_json: bool) -> None:
    """List the installed node handlers with their parameters and results (or show one)."""
    installed = _installed(trees)
    if handler_id is not None:
        handler = installed.get(handler_id)
        if handler is None:
            hint = did_you_mean(handler_id, installed)
            raise click.ClickException(
                f"no handler {handler_id!r} is installed{hint} (treeflow handlers lists them)"
            )
        if as_json:
            print_json(handler_json(handler))
        else:
            _print_one(handler)
        return
    if as_json:
        print_json([handler_json(handler) for handler in installed.values()])
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("Handler", no_wrap=True)
    table.add_column("Parameters", overflow="fold", ratio=2)
    table.add_column("Results", overflow="fold", ratio=1)
    for handler in installed.values():
        parameters = "\n".join(_parameter(parameter) for parameter in handler.parameters)
        table.add_row(
            Text(handler.definition_id + (" (defers)" if handler.deferrable else "")),
            Text(parameters),
            Text(", ".join(handler.results)),
        )
    console.print(table)
    console.print("treeflow handlers ID shows one in full.", highlight=False, markup=False)


__all__ = ["handlers"]
