"""Response templates: placeholders, filters, generators, directives, and compile errors with key paths."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from proxy.policy.template import TemplateError, compile_condition, compile_template

ENV: dict[str, Any] = {
    "body": {
        "to": ["+15555550100", "+15555550101"],
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "off": False,
        "nothing": None,
        "empty": "",
        "variables": {"name": "Ada"},
        "channel": ["sent", "sms"],
        "only_sent": ["sent"],
        "none": [],
        "name": "Ada Lovelace",
        "nested": {"deep": {"value": "x"}},
    },
    "path": {"id": "c_42"},
    "request_id": "req_test_1",
    "now": "2024-01-15T10:30:00Z",
}


def render(template: Any, env: dict[str, Any] = ENV) -> Any:
    return compile_template(template)(env)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ body.variables }}", {"name": "Ada"}),
        ("{{ body.to }}", ["+15555550100", "+15555550101"]),
        ("{{ body.count }}", 3),
        ("{{ body.ratio }}", 0.5),
        ("{{ body.flag }}", True),
        ("{{ body.off }}", False),
        ("{{ body.nothing }}", None),
        ("{{ body.missing }}", None),
        ("{{body.count}}", 3),
        ("{{ body.to.1 }}", "+15555550101"),
        ("{{ body.to.9 }}", None),
        ("{{ body.nested.deep.value }}", "x"),
        ("{{ body.name.first }}", None),
        ("{{ path.id }}", "c_42"),
        ("{{ nope.at.all }}", None),
    ],
)
def test_a_whole_placeholder_keeps_the_value_and_its_type(template: str, expected: Any) -> None:
    assert render(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("tel:{{ body.to.0 }}", "tel:+15555550100"),
        ("{{ body.count }} items", "3 items"),
        ("{{ body.flag }}/{{ body.off }}", "true/false"),
        ("x{{ body.missing }}y", "xy"),
        ("x{{ body.nothing }}y", "xy"),
        ("vars={{ body.variables }}", 'vars={"name":"Ada"}'),
        ("{{ path.id }}-{{ request_id }}", "c_42-req_test_1"),
        (" {{ body.count }} ", " 3 "),
        ("no placeholders here", "no placeholders here"),
        ("{{ unclosed", "{{ unclosed"),
    ],
)
def test_a_placeholder_inside_text_is_interpolated_as_text(template: str, expected: str) -> None:
    assert render(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ body.missing | default('sms') }}", "sms"),
        ("{{ body.nothing | default('sms') }}", "sms"),
        ("{{ body.off | default(true) }}", False),
        ("{{ body.count | default(0) }}", 3),
        ("{{ body.missing | default([]) }}", []),
        ("{{ body.missing | default }}", None),
        ("{{ body.channel | first }}", "sent"),
        ("{{ body.none | first }}", None),
        ("{{ body.name | first }}", "Ada Lovelace"),
        ("{{ body.channel | first | exclude('sent') }}", None),
        ("{{ body.to | first | exclude('sent') }}", "+15555550100"),
        ("{{ body.only_sent | first | exclude('sent', 'sms') | default('sms') }}", "sms"),
        ("{{ body.name | upper }}", "ADA LOVELACE"),
        ("{{ body.name | lower }}", "ada lovelace"),
        ("{{ body.count | upper }}", 3),
        ("{{ body.to | length }}", 2),
        ("{{ body.name | length }}", 12),
        ("{{ body.variables | length }}", 1),
        ("{{ body.missing | length }}", 0),
        ("{{ body.count | str }}", "3"),
        ("{{ body.flag | str }}", "true"),
        ("{{ body.variables | str }}", '{"name":"Ada"}'),
        ("{{ body.nothing | str }}", ""),
        ("{{ body.missing | str }}", None),
        ("{{ body.name|upper|lower }}", "ada lovelace"),
        ("hi {{ body.missing | default(\"there\") | upper }}!", "hi THERE!"),
    ],
)
def test_filters(template: str, expected: Any) -> None:
    assert render(template) == expected


def test_uuid_is_a_fresh_version_4_uuid_on_every_call() -> None:
    template = compile_template({"a": "{{ uuid() }}", "b": "{{ uuid() }}"})
    first, second = template(ENV), template(ENV)
    values = [first["a"], first["b"], second["a"], second["b"]]
    assert len(set(values)) == 4
    assert all(uuid.UUID(v).version == 4 for v in values)


@pytest.mark.parametrize(
    ("template", "pattern"),
    [
        ("{{ token() }}", r"[0-9a-f]{24}"),
        ("{{ token('msg_') }}", r"msg_[0-9a-f]{24}"),
        ("{{ token('msg_', 4) }}", r"msg_[0-9a-f]{8}"),
        ("B{{ token('', 3) | upper }}", r"B[0-9A-F]{6}"),
    ],
)
def test_token_is_a_prefix_and_random_hex(template: str, pattern: str) -> None:
    render_token = compile_template(template)
    values = {render_token(ENV) for _ in range(20)}
    assert all(re.fullmatch(pattern, value) for value in values)
    assert len(values) > 1


@pytest.mark.parametrize(("template", "nbytes"), [("{{ whsec() }}", 24), ("{{ whsec(32) }}", 32)])
def test_whsec_is_a_standard_webhooks_secret(template: str, nbytes: int) -> None:
    secret = render(template)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == nbytes
    assert render(template) != secret
    Webhook(secret)  # the independent implementation accepts it as a signing secret


@pytest.mark.parametrize(("low", "high"), [(1, 6), (0, 0), (-5, 5), (100, 101)])
def test_randint_stays_within_its_inclusive_bounds(low: int, high: int) -> None:
    draw = compile_template(f"{{{{ randint({low}, {high}) }}}}")
    values = {draw(ENV) for _ in range(300)}
    assert all(isinstance(v, int) and low <= v <= high for v in values)
    assert values == set(range(low, high + 1)) or high - low > 20


def test_each_renders_the_template_once_per_element_with_item_and_index() -> None:
    template = {"$each": "body.to", "$template": {"to": "{{ item }}", "n": "{{ index }}", "id": "{{ uuid() }}"}}
    out = render(template)
    assert [(r["to"], r["n"]) for r in out] == [("+15555550100", 0), ("+15555550101", 1)]
    assert out[0]["id"] != out[1]["id"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"$each": "{{ body.to }}", "$as": "phone", "$template": "{{ phone }}#{{ index }}"},
         ["+15555550100#0", "+15555550101#1"]),
        ({"$each": "body.missing", "$template": "{{ item }}"}, []),
        ({"$each": "body.nothing", "$template": "{{ item }}"}, []),
        ({"$each": "body.count", "$template": "{{ item }}"}, [3]),
        ({"$each": "body.to", "$template": {"$each": "body.channel", "$as": "c", "$template": "{{ c }}"}},
         [["sent", "sms"], ["sent", "sms"]]),
        ({"$each": "body.to", "$template": "{{ body.name }}"}, ["Ada Lovelace", "Ada Lovelace"]),
    ],
)
def test_each(template: dict[str, Any], expected: list[Any]) -> None:
    assert render(template) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("body.flag", "yes"),
        ("body.off", "no"),
        ("body.nothing", "no"),
        ("body.missing", "no"),
        ("body.none", "no"),
        ("body.empty", "no"),
        ("body.count", "yes"),
        ("body.to", "yes"),
        ("body.variables", "yes"),
        ("!body.missing", "yes"),
        ("!body.flag", "no"),
        ("!body.empty", "yes"),
        ("{{ body.flag }}", "yes"),
    ],
)
def test_if_chooses_on_presence_and_non_emptiness(condition: str, expected: str) -> None:
    assert render({"$if": condition, "$then": "yes", "$else": "no"}) == expected
    assert compile_condition(condition.strip("{} "))(ENV) is (expected == "yes")


def test_if_without_else_renders_null() -> None:
    assert render({"$if": "body.missing", "$then": "yes"}) is None


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"$merge": [{"a": 1, "b": 1}, {"b": 2}]}, {"a": 1, "b": 2}),
        ({"$merge": [{"a": 1}, "{{ body.variables }}"]}, {"a": 1, "name": "Ada"}),
        ({"$merge": [{"a": 1}, "{{ body.missing }}", "{{ body.count }}"]}, {"a": 1}),
        ({"$merge": []}, {}),
    ],
)
def test_merge_combines_objects_left_to_right(template: dict[str, Any], expected: dict[str, Any]) -> None:
    assert render(template) == expected


def test_plain_data_renders_as_itself_recursively() -> None:
    template = {"a": [1, 2.5, True, None, "x", {"b": "{{ path.id }}"}], 409: "status keys become strings"}
    assert render(template) == {"a": [1, 2.5, True, None, "x", {"b": "c_42"}], "409": "status keys become strings"}


@pytest.mark.parametrize(
    ("template", "where", "message"),
    [
        ({"x": "{{ foo() }}"}, "routes.0.test_response.0.data.x", "unknown function foo()"),
        ({"x": "{{ body.x | shout }}"}, "routes.0.test_response.0.data.x", "unknown filter 'shout'"),
        ({"x": "{{ body.x | upper(1) }}"}, "routes.0.test_response.0.data.x", "filter upper does not take [1]"),
        ({"x": "{{ body.x | first(2) }}"}, "routes.0.test_response.0.data.x", "filter first does not take [2]"),
        ({"x": "{{ uuid(1) }}"}, "routes.0.test_response.0.data.x", "uuid() does not take [1]"),
        ({"x": "{{ randint(5, 1) }}"}, "routes.0.test_response.0.data.x", "randint() does not take [5, 1]"),
        ({"x": "{{ randint(1) }}"}, "routes.0.test_response.0.data.x", "randint() does not take [1]"),
        ({"x": "{{ token('x', -1) }}"}, "routes.0.test_response.0.data.x", "token() does not take"),
        ({"x": "{{ token(nope) }}"}, "routes.0.test_response.0.data.x", "are not JSON literals"),
        ({"x": "{{ uuid( }}"}, "routes.0.test_response.0.data.x", "cannot parse expression 'uuid('"),
        ({"x": "{{ 1abc }}"}, "routes.0.test_response.0.data.x", "cannot parse expression"),
        ({"x": ["ok", "{{ nope() }}"]}, "routes.0.test_response.0.data.x.1", "unknown function nope()"),
        ({"x": "ok {{ body.a }} {{ zap() }}"}, "routes.0.test_response.0.data.x", "unknown function zap()"),
        ({"x": {"$each": "body.to"}}, "routes.0.test_response.0.data.x", "missing ['$template']"),
        ({"x": {"$each": "body.to", "$template": 1, "$bogus": 1}}, "routes.0.test_response.0.data.x",
         "unexpected ['$bogus']"),
        ({"x": {"$each": "body.to", "$template": 1, "plain": 1}}, "routes.0.test_response.0.data.x",
         "unexpected ['plain']"),
        ({"x": {"$each": "", "$template": 1}}, "routes.0.test_response.0.data.x.$each",
         "expected an expression string"),
        ({"x": {"$each": "body.to", "$template": "{{ nope() }}"}}, "routes.0.test_response.0.data.x.$template",
         "unknown function nope()"),
        ({"x": {"$if": "body.a", "$else": 1}}, "routes.0.test_response.0.data.x", "missing ['$then']"),
        ({"x": {"$if": 3, "$then": 1}}, "routes.0.test_response.0.data.x.$if", "expected an expression string"),
        ({"x": {"$if": "!foo(", "$then": 1}}, "routes.0.test_response.0.data.x.$if", "cannot parse expression"),
        ({"x": {"$if": "body.a", "$then": 1, "$else": "{{ q() }}"}}, "routes.0.test_response.0.data.x.$else",
         "unknown function q()"),
        ({"x": {"$merge": {"a": 1}}}, "routes.0.test_response.0.data.x.$merge", "expected a list of objects"),
        ({"x": {"$merge": [{}, "{{ q() }}"]}}, "routes.0.test_response.0.data.x.$merge.1", "unknown function q()"),
        ({"x": {"$merge": [], "extra": 1}}, "routes.0.test_response.0.data.x", "unexpected ['extra']"),
        ({"x": {"$foo": 1}}, "routes.0.test_response.0.data.x", "unknown directive(s) ['$foo']"),
        ({"x": {1, 2}}, "routes.0.test_response.0.data.x", "unsupported value of type set"),
    ],
)
def test_compile_errors_name_the_key_path(template: Any, where: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(template, "routes.0.test_response.0.data")
    assert str(caught.value).startswith(f"{where}: ")
    assert message in str(caught.value)


def test_an_unknown_function_error_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError, match=r"known: randint, token, uuid, whsec"):
        compile_template("{{ foo() }}")
