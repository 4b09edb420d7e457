"""Translate the Ruby a Kinetic export carries (ERB parameters, connector values) to Jinja2.

Kinetic writes node parameters as ERB (``Dear <%= @results['Lookup']['Name'] %>``) and connector
conditions as plain Ruby (``@results['Review']['Status'] == 'Approved'``, sometimes wrapped in
``<%= ... %>``). The translation (``engine.kinetic.ruby``) is a tokenizer and a
recursive-descent parser that emit Jinja text, never evaluating anything. It covers the idioms
real trees use; the README's "What translates" table lists them with an example each:

- the bindings ``@results``, ``@inputs``, ``@source``, ``@run``, ``@task``, ``@trigger`` and
  Request CE's ``@values``, ``@submission``, ``@form``, ``@kapp``, ``@space``,
  ``@*_attributes``, ``@team``, ``@user``, ``@answers``, ``@dataset``;
- literals, ``"#{...}"`` interpolation, ``+ - * / %``, comparisons, ``&& || !``, ``and or
  not``, ``? :``, ``JSON.parse(x)`` (and ``rescue`` of it), ``to_json``,
  ``ERB::Util.url_encode``, ``CGI.escape``, and the methods ``to_s to_i to_f strip downcase
  upcase capitalize length size count empty? nil? include? has_key? start_with? end_with?
  delete_prefix gsub sub split join merge keys first last is_a?``; hash and array literals;
- statements: ``a = x; b``, ``x if c``, ``<% if %> / elsif / else / unless / <% end %>``.

Ruby's values are kept: a value that is not a boolean is tested with Ruby's truth (only ``nil``
and ``false`` are false), ``nil`` prints as ``""``, integers divide as integers. Everything
outside raises :class:`Untranslatable`, and the caller keeps the original text and reports it;
kept ERB inside a parameter is escaped so that Jinja prints it as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.kinetic.ruby.bindings import jinja_string
from engine.kinetic.ruby.templates import (
    Kept,
    translate_condition,
    translate_template,
    translate_value,
)
from engine.kinetic.ruby.tokens import Untranslatable


@dataclass(frozen=True)
class Translation:
    """What became of one parameter or connector value: for the importer's report.

    ``text`` is what the tree gets (Jinja, or the original escaped where it was kept; None
    for an empty condition); ``kept`` lists each piece kept as written, with why.
    """

    kind: str  # "parameter" or "condition"
    original: str
    text: str | None
    kept: tuple[Kept, ...]

    @property
    def ruby(self) -> bool:
        """Whether the original holds Ruby at all (an ERB tag; a non-empty condition)."""
        return "<%" in self.original if self.kind == "parameter" else self.text is not None

    @property
    def translated(self) -> bool:
        return not self.kept


def parameter_translation(text: str) -> Translation:
    """Translate an ERB parameter, saying what was kept and why."""
    translated, kept = translate_template(text)
    return Translation("parameter", text, translated, tuple(kept))


def condition_translation(value: str) -> Translation:
    """Translate a connector value; when it cannot be, the tree keeps it as written."""
    try:
        return Translation("condition", value, translate_condition(value), ())
    except Untranslatable as exc:
        return Translation("condition", value, value, (Kept(value, exc.reason),))


__all__ = [
    "Kept",
    "Translation",
    "Untranslatable",
    "condition_translation",
    "jinja_string",
    "parameter_translation",
    "translate_condition",
    "translate_template",
    "translate_value",
]
