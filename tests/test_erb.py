"""Translating Kinetic's ERB and Ruby to Jinja: each form translated, everything else kept.

Every translation is also compiled and evaluated in treeflow's sandbox on sample data, so the
tables check what the translated text *does*, not only how it reads.
"""

from __future__ import annotations

import pytest

from engine.kinetic.erb import Kept, Untranslatable, translate_condition, translate_template
from engine.tree.expressions import Expressions

SCOPE = {
    "results": {"Review": {"Status": "Approved", "Count": "150", "Note": ""}},
    "inputs": {"Email": "ada@example.com", "Urgent": "yes"},
    "values": {"Field": "blue"},
    "source": {"name": "Kinetic Request", "group": "HR", "id": "REQ-7", "data": "<d/>"},
}

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
    "values look-up": ("<%= @values['Field'] %>", "{{ values['Field'] }}", "blue"),
    "no spaces, trim marker": ("<%=@values['Field']-%>", "{{ values['Field'] }}", "blue"),
    "method to filter": ("<%= @values['Field'].upcase %>", "{{ values['Field']|upper }}", "BLUE"),
    "string literal": ("<%= 'it\\'s' %>", None, "it's"),
    "ERB comment dropped": ("a<%# nothing %>b", "ab", "ab"),
    "escaped tag": ("<%% not code %>", "<% not code %>", "<% not code %>"),
    "Jinja markup in the text stays text": (
        "{{ x }} <%= @values['Field'] %>",
        None,
        "{{ x }} blue",
    ),
    "plain text": ("no ERB at all", "no ERB at all", "no ERB at all"),
}

CONDITIONS = {
    "equality": (
        "@results['Review']['Status'] == 'Approved'",
        "results['Review']['Status'] == 'Approved'",
        True,
    ),
    "wrapped in <%= %>": ("<%= @results['Review']['Status'] != \"Approved\" %>", None, False),
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
    "nil?": ("@values['Field'].nil?", "values['Field'] is none", False),
    "nil literal": ("@values['Field'] == nil", "values['Field'] == none", False),
    "double-quoted escapes": ('@values["Field"] == "bl\\tue"', None, False),
}

KEPT_CONDITIONS = {
    "a bare value (Ruby truthiness differs)": (
        "@results['Review']['Status']",
        "a bare value as a condition",
    ),
    "an unknown variable": ("@answers['Q'] == 'x'", "@answers is not one of"),
    "a regular expression": ("@values['Field'] =~ /bl/", "'=~ /bl/' is not part"),
    "string interpolation": ("\"#{@values['Field']}\" == 'x'", "string interpolation"),
    "an unknown method": ("@values['Field'].length > 2", "the method .length is not translated"),
    "chained comparisons": ("1 < 2 < 3", "chained comparisons"),
    "an unknown source field": ("@source['Tree'] == 'x'", "@source['Tree'] is not one of"),
    "a look-up by a variable": ("@results[name]['x'] == 1", "indexed by 'name'"),
    "&& on a bare value": ("@values['Field'] && true", "&& on a value that is not a comparison"),
    "a trailing token": ("@values['Field'] == 'x' ;", "';' is not part"),
}


@pytest.mark.parametrize(("erb", "jinja", "rendered"), TEMPLATES.values(), ids=TEMPLATES.keys())
def test_erb_template_is_translated(erb: str, jinja: str | None, rendered: str | None) -> None:
    text, kept = translate_template(erb)

    assert kept == []
    if jinja is not None:
        assert text == jinja
    if rendered is not None:
        assert Expressions().template(text).render(SCOPE) == rendered


@pytest.mark.parametrize(("ruby", "jinja", "value"), CONDITIONS.values(), ids=CONDITIONS.keys())
def test_ruby_condition_is_translated(ruby: str, jinja: str | None, value: bool) -> None:
    text = translate_condition(ruby)

    assert text is not None
    if jinja is not None:
        assert text == jinja
    assert Expressions().condition(text).evaluate(SCOPE) is value


@pytest.mark.parametrize("value", ["", "   ", "<%= %>"], ids=["empty", "blank", "empty tag"])
def test_empty_connector_value_means_no_condition(value: str) -> None:
    assert translate_condition(value) is None


@pytest.mark.parametrize(("ruby", "reason"), KEPT_CONDITIONS.values(), ids=KEPT_CONDITIONS.keys())
def test_ruby_outside_the_subset_is_refused_with_a_reason(ruby: str, reason: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        translate_condition(ruby)

    assert reason in caught.value.reason


def test_untranslatable_tags_are_kept_as_written_and_listed() -> None:
    erb = "<% if @x %>yes<% end %> for <%= @answers['Q'] %>, <%= @values['Field'] %>"

    text, kept = translate_template(erb)

    assert text == "<% if @x %>yes<% end %> for <%= @answers['Q'] %>, {{ values['Field'] }}"
    assert kept == [
        Kept("<% if @x %>", "Ruby code that is not a <%= ... %> look-up"),
        Kept("<% end %>", "Ruby code that is not a <%= ... %> look-up"),
        Kept("<%= @answers['Q'] %>", "@answers is not one of @results, @inputs, @values, @source"),
    ]
    rendered = Expressions().template(text).render(SCOPE)
    assert rendered == "<% if @x %>yes<% end %> for <%= @answers['Q'] %>, blue"


def test_kept_code_with_jinja_markup_still_compiles_and_prints_as_written() -> None:
    erb = "<%= @answers['Q'].map { |a| \"{{#{a}}}\" } %>"

    text, kept = translate_template(erb)

    assert [k.code for k in kept] == [erb]
    assert Expressions().template(text).render(SCOPE) == erb


def test_an_unclosed_tag_is_kept_and_listed() -> None:
    text, kept = translate_template("Hello <%= @values['Field']")

    assert text == "Hello <%= @values['Field']"
    assert kept == [Kept("<%= @values['Field']", "an ERB tag that is never closed")]
