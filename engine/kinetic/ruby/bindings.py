"""Where each of Kinetic's ``@`` bindings is found in a treeflow template's scope.

A Kinetic tree reads its run through instance variables (``@results['Node']['Name']``,
``@task['Deferral Token']``); a treeflow template reads the same things through names
(``results['Node']['Name']``, ``task.deferral_token``). Kinetic Request CE's source adapter adds
the bindings of the submission that started the run (``@values``, ``@submission``, ``@form``,
``@kapp``, ``@space`` and their ``_attributes``, ``@team``, ``@user``, Request RE's ``@answers``
and ``@dataset``); treeflow derives them from the run's source data
(``engine.run.source_bindings``) under the name ``kinetic``, so ``@values['Color']`` reads
``kinetic['values']['Color']``.

``@error`` (Kinetic Task's Run Error trees) is the source data's ``error`` object. Bindings
treeflow has no counterpart for (``@request`` of Web API trees, keys of
``@task`` a treeflow task does not have) raise :class:`Untranslatable` naming them: the text is
kept as written and reported rather than guessed.
"""

from __future__ import annotations

from engine.kinetic.ruby.tokens import Untranslatable
from engine.run.source_bindings import NAMES
from engine.run.source_bindings import SCOPE_NAME as KINETIC_SCOPE

# Bindings read from the run's source data (engine.run.source_bindings), by their Ruby name.
SOURCE_BINDINGS = frozenset(NAMES)
# Bindings that are mappings of texts by any key: the Jinja name they are found under.
_MAPPINGS = {"@results": "results", "@variables": "results", "@inputs": "inputs"}
# Bindings whose keys are fixed: each Kinetic key and the treeflow expression it reads.
_FIXED: dict[str, dict[str, str]] = {
    "@source": {"Name": "source.name", "Group": "source.group", "Id": "source.id",
                "Data": "source.data"},
    "@run": {"Id": "run.id", "Tree Name": "run.tree", "Source Id": "source.id"},
    "@task": {"Id": "task.id", "Name": "task.name", "Deferral Token": "task.deferral_token",
              "Loop Index": "task.loop_index", "Tree Name": "run.tree", "Source Id": "source.id",
              "Run Id": "run.id"},
    "@trigger": {"Id": "trigger.id", "Action": "trigger.action", "Message": "trigger.message",
                 "Loop Index": "task.loop_index", "Source Id": "source.id", "Run Id": "run.id"},
}  # fmt: skip
_ABSENT = {
    "@request": "Web API bindings (@request...) are not supported",
    "@request_body_params": "Web API bindings (@request...) are not supported",
    "@request_headers": "Web API bindings (@request...) are not supported",
    "@request_query_params": "Web API bindings (@request...) are not supported",
}


def known(variable: str) -> bool:
    """Whether ``variable`` (``@name``) is a binding this module can place."""
    return variable in _MAPPINGS or variable in _FIXED or variable[1:] in SOURCE_BINDINGS


def whole(variable: str) -> str:
    """The Jinja expression for a binding used whole (``@inputs.to_json``, ``@values.keys``)."""
    if variable in _MAPPINGS:
        return _MAPPINGS[variable]
    if variable[1:] in SOURCE_BINDINGS:
        return f"{KINETIC_SCOPE}[{_quoted(variable[1:])}]"
    raise Untranslatable(_unknown(variable) if not known(variable) else f"{variable} used whole")


def keyed(variable: str, key: str) -> str:
    """The Jinja expression for ``variable[key]``, a look-up by a literal key."""
    if variable in _FIXED:
        found = _FIXED[variable].get(key)
        if found is None:
            keys = ", ".join(_FIXED[variable])
            raise Untranslatable(f"{variable}[{key!r}] is not one of {keys}")
        return found
    return f"{whole(variable)}[{_quoted(key)}]"


def _unknown(variable: str) -> str:
    return _ABSENT.get(variable, f"{variable} is not a binding treeflow has")


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


jinja_string = _quoted

__all__ = ["KINETIC_SCOPE", "SOURCE_BINDINGS", "jinja_string", "keyed", "known", "whole"]
