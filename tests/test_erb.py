"""Translating Kinetic's ERB and Ruby to Jinja: each idiom paired with what Ruby gives.

Every row is a Ruby idiom, its Jinja translation (where the exact text matters) and the value
Ruby gives for it on the data below (``RUBY_DATA``: the same data as instance variables, the
way Kinetic binds it). The values were written down from a Ruby 3.1 run of each template with
``ERB.new(template, trim_mode: "-")`` and of each condition with ``eval``; the tests render the
translation through the engine's real sandbox, with ``missing: nil`` as imported trees have it,
and compare. Ruby is not needed to run them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import ExpressionError
from engine.kinetic.erb import (
    Kept,
    Untranslatable,
    condition_translation,
    parameter_translation,
    translate_condition,
    translate_template,
)
from engine.tree.expressions import Expressions

JSON_TEXT = '{"a":{"b":"x"},"n":3,"list":["p","q"],"none":null}'
# What a run sees; the keys of "kinetic" are the Request CE bindings (@values, @submission...).
SCOPE: dict[str, Any] = {
    "results": {
        "Review": {"Status": "Approved", "Count": "150", "Note": "", "Json": JSON_TEXT},
        "Wait": {},
    },
    "inputs": {"Email": "ada lovelace@example.com", "Urgent": "yes"},
    "kinetic": {
        "values": {"Field": "blue", "Name": "  ada  ", "Teams": '["HR","IT"]'},
        "submission": {"Id": "S-1", "Core State": "Submitted"},
        "space_attributes": {"Web Server Url": "https://acme.example"},
        "form": {"Slug": "onboarding"},
        "error": {"Text": "boom", "run": {"Id": "9"}},
    },
    "source": {"name": "Kinetic Request", "group": "HR", "id": "REQ-7", "data": "<d/>"},
    "run": {"id": 7, "tree": "Approve"},
    "task": {"id": 11, "name": "Wait", "deferral_token": "tok-1", "loop_index": "/"},
    "trigger": {"id": 3, "action": "Root", "message": ""},
}
NIL = Expressions().reading_missing_as("nil")

# (ERB, its Jinja or None when only the value is checked, what Ruby prints)
TEMPLATES = {
    "results look-up": (
        "<%= @results['Review']['Status'] %>",
        "{{ results['Review']['Status'] }}",
        "Approved",
    ),
    "double quotes": ('<%= @results["Review"]["Status"] %>', None, "Approved"),
    "inputs look-up": ("To <%= @inputs['Email'] %>.", "To {{ inputs['Email'] }}.", None),
    "source id": ("<%= @source['Id'] %>", "{{ source.id }}", "REQ-7"),
    "source name, group, data": (
        "<%= @source['Name'] %>/<%= @source['Group'] %>/<%= @source['Data'] %>",
        None,
        "Kinetic Request/HR/<d/>",
    ),
    "@values from the source data": (
        "<%= @values['Field'] %>",
        "{{ kinetic['values']['Field'] }}",
        "blue",
    ),
    "@submission": ("<%= @submission['Id'] %>", "{{ kinetic['submission']['Id'] }}", "S-1"),
    "@space_attributes": (
        "<%= @space_attributes['Web Server Url'] %>",
        None,
        "https://acme.example",
    ),
    "@form": ("<%= @form['Slug'] %>", None, "onboarding"),
    "@run['Id']": ("<%= @run['Id'] %>", "{{ run.id|to_s }}", "7"),
    "@task['Deferral Token']": ("<%= @task['Deferral Token'] %>", None, "tok-1"),
    "@task['Name'] and ['Loop Index']": (
        "<%= @task['Name'] %><%= @task['Loop Index'] %>",
        None,
        "Wait/",
    ),
    "@error of a Run Error tree": (
        "<%= @error['Text'] %> in <%= @error['run']['Id'] %>",
        None,
        "boom in 9",
    ),
    "a modifier if": ("[<%= @values['Field'] if @results['Wait']['Status'] %>]", None, "[]"),
    "a modifier unless": (
        "<%= @values['Field'] unless @results['Wait']['Status'] %>",
        None,
        "blue",
    ),
    "a hash literal to_json": (
        "<%= {'Status' => @results['Review']['Status'], 'Teams' => JSON.parse(@values['Teams']), "
        "done: true}.to_json %>",
        None,
        '{"Status":"Approved","Teams":["HR","IT"],"done":true}',
    ),
    "a bare expression in a code tag prints nothing": ("<% {'a' => 1}.to_json %>x", None, "x"),
    "a comment line in a block": ("<%= # the name\n @values['Field'] %>", None, "blue"),
    "JSON.parse without parentheses": ("<%= JSON.parse @values['Teams'] %>", None, '["HR", "IT"]'),
    "split drops trailing empty fields": ("<%= 'a,b,,'.split(',').length %>", None, "2"),
    "split on whitespace": ("<%= '  a  b '.split.join('-') %>", None, "a-b"),
    "split, include?": ("<%= 'HR,IT'.split(',').include?('IT') %>", None, "true"),
    "merge, to_json": (
        "<%= JSON.parse(@results['Review']['Json'])['a'].merge({'c' => 'y'}).to_json %>",
        None,
        '{"b":"x","c":"y"}',
    ),
    "keys": ("<%= JSON.parse(@results['Review']['Json']).keys.join(',') %>", None, "a,n,list,none"),
    "count": ("<%= JSON.parse(@values['Teams']).count %>", None, "2"),
    "is_a?": (
        "<%= JSON.parse(@results['Review']['Json'])['list'].is_a?(Array) %>/"
        "<%= JSON.parse(@results['Review']['Json'])['a'].is_a?(Array) %>/"
        "<%= JSON.parse(@results['Review']['Json'])['a'].is_a?(Hash) %>",
        None,
        "true/false/true",
    ),
    "CGI.escape": ("<%= CGI.escape('a b&c') %>", None, "a+b%26c"),
    "if / else / end inside one tag, then the value": (
        "<%=\n  if @results['Review']['Count'].to_i > 100\n    size = 'large'\n  else\n"
        "    size = 'small'\n  end\n  size.upcase\n%>",
        None,
        "LARGE",
    ),
    "an index past the end of a list is nil": (
        "<%= JSON.parse(@values['Teams'])[5].nil? %>",
        None,
        "true",
    ),
    "@error's nested run, to_json": ("<%= @error['run'].to_json %>", None, '{"Id":"9"}'),
    "@trigger['Action']": ("<%= @trigger['Action'] %>", None, "Root"),
    "no spaces, trim marker": (
        "<%=@values['Field']-%>",
        "{{ kinetic['values']['Field'] }}",
        "blue",
    ),
    "-%> drops the line break after it": ("<%= @values['Field'] -%>\nnext", None, "bluenext"),
    "upcase": (
        "<%= @values['Field'].upcase %>",
        "{{ (kinetic['values']['Field']|upper) }}",
        "BLUE",
    ),
    "downcase": ("<%= 'MiXed'.downcase %>", None, "mixed"),
    "capitalize": ("<%= 'hELLO world'.capitalize %>", None, "Hello world"),
    "strip": ("[<%= @values['Name'].strip %>]", None, "[ada]"),
    "gsub with a text": ("<%= @values['Field'].gsub('u', 'oo') %>", None, "blooe"),
    "sub replaces the first": ("<%= 'a-b-c'.sub('-', '+') %>", None, "a+b-c"),
    "to_s of nil is empty": ("[<%= @results['Wait']['Status'].to_s %>]", None, "[]"),
    "to_i reads the leading number": ("<%= '12abc'.to_i + 1 %>", None, "13"),
    "to_i of nil is 0": ("<%= @results['Wait']['Count'].to_i %>", None, "0"),
    "to_f": ("<%= '2.5kg'.to_f * 2 %>", None, "5.0"),
    "integer division": ("<%= @results['Review']['Count'].to_i / 7 %>", None, "21"),
    "length": ("<%= @values['Field'].length %>", None, "4"),
    "size": ("<%= @values['Field'].size %>", None, "4"),
    "include? prints true": ("<%= @values['Field'].include?('lu') %>", None, "true"),
    "empty?": ("<%= @results['Review']['Note'].empty? %>", None, "true"),
    "nil?": ("<%= @results['Wait']['Status'].nil? %>", None, "true"),
    "to_s.empty? of a missing key": ("<%= @results['Wait']['Status'].to_s.empty? %>", None, "true"),
    "JSON.parse and index": (
        "<%= JSON.parse(@results['Review']['Json'])['a']['b'] %>",
        "{{ (results['Review']['Json']|fromjson)['a']['b']|to_s }}",
        "x",
    ),
    "JSON.parse has_key?": (
        "<%= JSON.parse(@results['Review']['Json']).has_key?('n') %>",
        None,
        "true",
    ),
    "JSON.parse of an array, first": ("<%= JSON.parse(@values['Teams']).first %>", None, "HR"),
    "JSON null prints empty": (
        "[<%= JSON.parse(@results['Review']['Json'])['none'] %>]",
        None,
        "[]",
    ),
    "JSON.parse rescue {}": (
        "[<%= (JSON.parse(@results['Wait']['Json'].to_s) rescue {})['a'] %>]",
        None,
        "[]",
    ),
    "@inputs.to_json": (
        "<%= @inputs.to_json %>",
        "{{ (inputs|to_json) }}",
        '{"Email":"ada lovelace@example.com","Urgent":"yes"}',
    ),
    "x.to_json": ("<%= @values['Field'].to_json %>", None, '"blue"'),
    "a parsed value to_json": (
        "<%= JSON.parse(@results['Review']['Json'])['a'].to_json %>",
        None,
        '{"b":"x"}',
    ),
    "ERB::Util.url_encode": (
        "<%= ERB::Util.url_encode(@inputs['Email']) %>",
        "{{ (inputs['Email']|url_encode) }}",
        "ada%20lovelace%40example.com",
    ),
    "interpolation": (
        "<%= \"#{@form['Slug']}: #{@results['Review']['Count'].to_i + 1} \" +\n"
        "  \"for #{@values['Field']}\" %>",
        None,
        "onboarding: 151 for blue",
    ),
    "+ of texts": (
        "<%= @space_attributes['Web Server Url'] + '/kapps/' + @form['Slug'] %>",
        None,
        "https://acme.example/kapps/onboarding",
    ),
    "ternary": ("<%= @values['Field'] == 'blue' ? 'cool' : 'warm' %>", None, "cool"),
    "|| gives a default for nil": (
        "<%= @results['Wait']['Status'] || 'none yet' %>",
        None,
        "none yet",
    ),
    "|| keeps an empty text (Ruby's truth)": (
        "[<%= @results['Review']['Note'] || 'x' %>]",
        None,
        "[]",
    ),
    "&& gives the last": ("<%= @values['Field'] && @form['Slug'] %>", None, "onboarding"),
    "! of a comparison": ("<%= !(@values['Field'] == 'red') %>", None, "true"),
    "multi-statement block": (
        "<%= name = @values['Name'].strip; name.capitalize %>",
        "{% set name = (kinetic['values']['Name']|trim) %}{{ (name|capitalize) }}",
        "Ada",
    ),
    "assignment tag, used later": (
        "<% url = @space_attributes['Web Server Url'] %><%= url %>/x",
        None,
        "https://acme.example/x",
    ),
    "if / elsif / else / end": (
        "<% if @values['Field'] == 'red' %>R<% elsif @values['Field'] == 'blue' %>B"
        "<% else %>X<% end %>",
        "{% if kinetic['values']['Field'] == 'red' %}R"
        "{% elif kinetic['values']['Field'] == 'blue' %}B{% else %}X{% endif %}",
        "B",
    ),
    "unless": ("<% unless @results['Wait']['Status'].nil? %>has<% end %>done", None, "done"),
    "if on a value uses Ruby's truth ('' is true)": (
        "<% if @results['Review']['Note'] %>set<% end %>",
        None,
        "set",
    ),
    "control tags with trim markers, over lines": (
        "a\n  <%- if true -%>\nb\n  <%- end -%>\nc",
        None,
        "a\nb\nc",
    ),
    "string literal": ("<%= 'it\\'s' %>", None, "it's"),
    "ERB comment dropped": ("a<%# nothing %>b", "ab", "ab"),
    "escaped tag": ("<%% not code %>", "<% not code %>", "<% not code %>"),
    "Jinja markup in the text stays text": (
        "{{ x }} <%= @values['Field'] %>",
        None,
        "{{ x }} blue",
    ),
    "a missing key prints nothing": ("[<%= @results['Wait']['Status'] %>]", None, "[]"),
    "plain text": ("no ERB at all", "no ERB at all", "no ERB at all"),
}

# (Ruby condition, its Jinja or None, the value Ruby gives)
CONDITIONS = {
    "equality": (
        "@results['Review']['Status'] == 'Approved'",
        "results['Review']['Status'] == 'Approved'",
        True,
    ),
    "wrapped in <%= %>": ("<%= @results['Review']['Status'] != \"Approved\" %>", None, False),
    "nil != 'Approved' is true": ("@results['Wait']['Status'] != 'Approved'", None, True),
    "nil == 'Approved' is false": ("@results['Wait']['Status'] == 'Approved'", None, False),
    "number comparison with to_i": ("@results['Review']['Count'].to_i >= 100", None, True),
    "&& and !": ("@inputs['Urgent'] == 'yes' && !@results['Review']['Note'].empty?", None, False),
    "|| and parentheses": (
        "(@values['Field'] == 'red' || @values['Field'] == 'blue') && true",
        None,
        True,
    ),
    "and / or share one precedence, left to right": (
        "@values['Field'] == 'blue' or @values['Field'] == 'red' and false",
        None,
        False,  # Ruby: (blue or red) and false
    ),
    "! binds tighter than a comparison": ("!(@values['Field'] == 'red')", None, True),
    "not keyword": ("not @values['Field'] == 'red'", None, True),
    "include?": ("@inputs['Email'].include?('@example.com')", None, True),
    "nil? of a value": ("@values['Field'].nil?", "kinetic['values']['Field'] is nil", False),
    "nil? of a missing key": ("@results['Wait']['Status'].nil?", None, True),
    "== nil": ("@results['Wait']['Status'] == nil", "results['Wait']['Status'] is nil", True),
    "!= nil": ("@values['Field'] != nil", None, True),
    "to_s.empty? means not given": ("@results['Wait']['Status'].to_s.empty?", None, True),
    "a bare value is Ruby's truth": ("@results['Review']['Note']", None, True),  # "" is true
    "a bare missing key is false": ("@results['Wait']['Status']", None, False),
    "! of a missing key": ("!@results['Wait']['Status']", None, True),
    "&& of values": ("@values['Field'] && @results['Wait']['Status']", None, False),
    "length": ("@values['Field'].length > 3", None, True),
    "downcase": ("@results['Review']['Status'].downcase == 'approved'", None, True),
    "strip": ("@values['Name'].strip == 'ada'", None, True),
    "JSON.parse(x)[k]": ("JSON.parse(@results['Review']['Json'])['n'] > 2", None, True),
    "JSON.parse(x).has_key?": (
        "JSON.parse(@results['Review']['Json']).has_key?('zz')",
        None,
        False,
    ),
    "start_with?": ("@space_attributes['Web Server Url'].start_with?('https')", None, True),
    "ternary": ("@values['Field'] == 'blue' ? true : false", None, True),
    "a local, then a test": (
        "data = JSON.parse(@results['Review']['Json']); data['a']['b'] == 'x' && data['n'] == 3",
        None,
        True,
    ),
    "statements on lines": ("count = @results['Review']['Count'].to_i\ncount > 100", None, True),
    "method chain over lines": ("@values['Field']\n  .upcase == 'BLUE'", None, True),
    "interpolation": ("\"#{@form['Slug']}-x\" == 'onboarding-x'", None, True),
    "double-quoted escapes": ('@values["Field"] == "bl\\tue"', None, False),
}

# (Ruby that stays as written, a part of the reason given)
KEPT_CONDITIONS = {
    "an unknown variable": ("@foo['Q'] == 'x'", "@foo is not a binding treeflow has"),
    "@request of Web API trees": ("@request['Body'] == 'x'", "Web API bindings"),
    "a regular expression": ("@values['Field'] =~ /bl/", "regular expressions"),
    "an unknown method": (
        "@values['Field'].reverse == 'x'",
        "the method .reverse is not translated",
    ),
    "chained comparisons": ("1 < 2 < 3", "chained comparisons"),
    "an unknown source field": ("@source['Tree'] == 'x'", "@source['Tree'] is not one of"),
    "an unknown task field": ("@task['Visible'] == 'x'", "@task['Visible'] is not one of"),
    "a look-up by a variable": ("@results[name]['x'] == 1", "indexed by 'name'"),
    "a trailing token": ("@values['Field'] == 'x' )", "')' is not translated"),
    "a block": ("@values.any? { |k, v| v == 'x' }", "is not part of the Ruby translated"),
    "+ of a text and a number": ("'a' + 1 == 'a1'", "+ of a text and a value"),
    "rescue of something else": ("(@values['F'].upcase rescue 'x') == 'x'", "rescue of anything"),
    "a gsub with a regular expression": (
        "@values['F'].gsub(/a/, 'b') == 'x'",
        "'/' is not a value translated",
    ),
}


@pytest.mark.parametrize(("erb", "jinja", "ruby"), TEMPLATES.values(), ids=TEMPLATES.keys())
def test_erb_template_is_translated(erb: str, jinja: str | None, ruby: str | None) -> None:
    text, kept = translate_template(erb)

    assert kept == []
    if jinja is not None:
        assert text == jinja
    if ruby is not None:
        assert NIL.template(text).render(SCOPE) == ruby


@pytest.mark.parametrize(("ruby", "jinja", "value"), CONDITIONS.values(), ids=CONDITIONS.keys())
def test_ruby_condition_is_translated(ruby: str, jinja: str | None, value: bool) -> None:
    text = translate_condition(ruby)

    assert text is not None
    if jinja is not None:
        assert text == jinja
    assert NIL.condition(text).evaluate(SCOPE) is value


@pytest.mark.parametrize("value", ["", "   ", "<%= %>"], ids=["empty", "blank", "empty tag"])
def test_empty_connector_value_means_no_condition(value: str) -> None:
    assert translate_condition(value) is None


@pytest.mark.parametrize(("ruby", "reason"), KEPT_CONDITIONS.values(), ids=KEPT_CONDITIONS.keys())
def test_ruby_outside_the_subset_is_refused_with_a_reason(ruby: str, reason: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        translate_condition(ruby)

    assert reason in caught.value.reason


def test_untranslatable_output_tags_are_kept_as_written_and_listed() -> None:
    erb = "<%= @foo['Q'] %> for <%= @request['Body'] %>, <%= @values['Field'] %>"

    text, kept = translate_template(erb)

    assert text == "<%= @foo['Q'] %> for <%= @request['Body'] %>, {{ kinetic['values']['Field'] }}"
    assert kept == [
        Kept("<%= @foo['Q'] %>", "@foo is not a binding treeflow has"),
        Kept("<%= @request['Body'] %>", "Web API bindings (@request...) are not supported"),
    ]
    rendered = NIL.template(text).render(SCOPE)
    assert rendered == "<%= @foo['Q'] %> for <%= @request['Body'] %>, blue"


def test_an_untranslatable_control_tag_keeps_the_whole_template() -> None:
    erb = "<% @values.each do |name, value| %><%= name %><% end %> and <%= @values['Field'] %>"

    text, kept = translate_template(erb)

    assert text == erb  # translating the rest alone would print something else
    assert [k.code for k in kept] == ["<% @values.each do |name, value| %>"]
    assert "so the whole template is kept" in kept[0].reason
    assert NIL.template(text).render(SCOPE) == erb


def test_an_if_without_its_end_keeps_the_whole_template() -> None:
    text, kept = translate_template("<% if @values['Field'] %>open")

    assert text == "<% if @values['Field'] %>open"
    assert "without its <% end %>" in kept[0].reason


def test_kept_code_with_jinja_markup_still_compiles_and_prints_as_written() -> None:
    erb = "<%= @answers['Q'].map { |a| \"{{#{a}}}\" } %>"

    text, kept = translate_template(erb)

    assert [k.code for k in kept] == [erb]
    assert NIL.template(text).render(SCOPE) == erb


def test_an_unclosed_tag_is_kept_and_listed() -> None:
    text, kept = translate_template("Hello <%= @values['Field']")

    assert text == "Hello <%= @values['Field']"
    assert kept == [Kept("<%= @values['Field']", "an ERB tag never closed")]


def test_the_report_interface_says_translated_or_kept_and_why() -> None:
    done = parameter_translation("Hi <%= @values['Field'] %>")
    plain = parameter_translation("no Ruby")
    kept = condition_translation("@values['Field'] =~ /x/")
    empty = condition_translation("")

    assert (done.ruby, done.translated, done.text) == (
        True,
        True,
        "Hi {{ kinetic['values']['Field'] }}",
    )
    assert (plain.ruby, plain.translated) == (False, True)
    assert (kept.ruby, kept.translated, kept.text) == (True, False, "@values['Field'] =~ /x/")
    assert kept.kept[0].reason == "regular expressions (=~) are not translated"
    assert (empty.ruby, empty.text) == (False, None)


def test_under_the_strict_default_a_missing_key_in_a_translation_is_still_an_error() -> None:
    strict = Expressions()
    condition = strict.condition(translate_condition("@results['Wait']['Status'].nil?") or "")
    template = strict.template(translate_template("<%= @results['Wait']['Status'].to_s %>")[0])

    for evaluate in (lambda: condition.evaluate(SCOPE), lambda: template.render(SCOPE)):
        with pytest.raises(Exception, match="missing key 'Status'"):
            evaluate()


@pytest.mark.parametrize(
    "template",
    ["{{ results['A']['Big']|fromjson|to_json }}", "{{ results['A']['Accents']|url_encode }}"],
    ids=["fromjson of a large text", "url_encode growing a text sixfold"],
)
def test_the_ruby_filters_are_metered_like_jinjas_own(template: str) -> None:
    small = Expressions(max_output=1000).reading_missing_as("nil")
    scope = {"results": {"A": {"Big": json.dumps(["x" * 100] * 20), "Accents": "é" * 400}}}

    with pytest.raises(
        ExpressionError, match=r"too much work: result of \d+ characters would exceed 1000"
    ):
        small.template(template).render(scope)
