"""Response templates: placeholders, filters, generators, directives, and compile errors with key paths."""

from __future__ import annotations

import ast
import base64
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from proxy.policy.expression import PATH, PLACEHOLDER, parse_expression, text
from proxy.policy.template import MISSING, TemplateError, compile_condition, compile_template, template_source

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


# --- generated code --------------------------------------------------------------------------------

HOSTILE = [
    '"}); import os; ({"', "'}); import os; ({'", "'''", '"""', "\\", "\\'", "\n", "\r\n", "\u2028", "\x00",
    "{", "}", "{{", "__import__('os').system('false')", "); env.clear(); (", "x' + str(1/0) + 'y", "\ud800",
]
# Names the generated code may use besides its own locals (_v1...) and constants (_c0...).
GENERATED_NAMES = re.compile(r"_v\d+|_c\d+|_M|_E|_lk|_pv|_tx|_seq|_first|env|type|str|dict|list|isinstance|enumerate")


def assert_no_policy_text_is_code(source: str) -> None:
    """Every name and attribute in ``source`` is the generator's own: policy text can only be a literal."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            assert GENERATED_NAMES.fullmatch(node.id), node.id
        elif isinstance(node, ast.Attribute):
            assert node.attr in {"get", "append", "update"}, node.attr
        elif isinstance(node, ast.FunctionDef):
            assert node.name == "_render"
        elif isinstance(node, ast.Import | ast.ImportFrom | ast.Lambda | ast.Global | ast.Nonlocal):
            raise AssertionError(ast.dump(node))


def test_policy_text_is_never_spliced_into_code() -> None:
    plain = [h for h in HOSTILE if "{" not in h and "}" not in h]  # braces next to a placeholder are syntax
    args = [h for h in plain if "'" not in h and "\ud800" not in h]  # arguments are JSON (quotes: ' is ")
    quoted = [orjson.dumps(h).decode() for h in args]
    template = {
        **{h: h for h in HOSTILE},
        "list": [*HOSTILE, "{{ body.name }}"],
        "interpolated": [f"{h}{{{{ body.name }}}}{h}" for h in plain],
        "filters": [f"{{{{ body.missing | default({q}) }}}}" for q in quoted],
        "excluded": [f"{{{{ body.name | exclude({q}) }}}}" for q in quoted],
        "tokens": [f"{{{{ token({q}, 1) }}}}" for q in quoted],
        "each": [{"$each": "body.to", "$as": h, "$template": {h: f"{{{{ index }}}}{h}"}} for h in HOSTILE],
    }
    source = template_source(template, bindings={HOSTILE[0]: ({HOSTILE[1]: "{{ now }}"}, "data")})
    assert_no_policy_text_is_code(source)
    out = render(template)
    assert {h: out[h] for h in HOSTILE} == {h: h for h in HOSTILE}
    assert out["list"] == [*HOSTILE, "Ada Lovelace"]
    assert out["interpolated"] == [f"{h}Ada Lovelace{h}" for h in plain]
    assert out["filters"] == args
    assert out["excluded"] == ["Ada Lovelace"] * len(args)
    assert [value[:-2] for value in out["tokens"]] == args
    assert out["each"] == [[{h: f"0{h}"}, {h: f"1{h}"}] for h in HOSTILE]


def test_a_template_is_one_function_with_its_constants_built_once() -> None:
    template = {"meta": {"version": "v3", "tags": ["a", "b"]}, "id": "{{ uuid() }}", "at": "{{ now }}"}
    render_once = compile_template(template)
    first, second = render_once(ENV), render_once(ENV)
    assert first["meta"] is second["meta"]  # folded at compile time, shared by every render
    assert first["id"] != second["id"]
    source = template_source(template)
    assert source.count("def ") == 1 and "lambda" not in source


def test_deep_templates_compile_past_the_parser_limits() -> None:
    nested: Any = "{{ body.count }}"
    for _ in range(300):
        nested = {"k": nested, "l": ["{{ index }}", nested]} if isinstance(nested, str) else {"k": nested}
    each: Any = "{{ item }}/{{ index }}"
    for level in range(30):  # Python allows 20 nested blocks
        each = {"$each": "body.only_sent", "$as": f"x{level}", "$template": [each, f"{{{{ x{level} }}}}"]}
    choice: Any = "{{ body.name }}"
    for _ in range(300):
        choice = {"$if": "body.flag", "$then": choice, "$else": {"$merge": [{"a": "{{ body.count }}"}]}}
    assert render(nested) == reference(nested, ENV)
    assert render(each) == reference(each, ENV)
    assert render(choice) == "Ada Lovelace"


# --- the same answers as a plain interpreter of the documented semantics ---------------------------


def reference_expression(text: str, env: dict[str, Any]) -> Any:
    """An expression's value, MISSING when absent (paths go through any Mapping, and lists by index)."""
    expr = parse_expression(text)
    if expr.call is not None:
        value = expr.call(*expr.args)
    else:
        value = env.get(expr.root, MISSING)
        for part in expr.parts:
            if isinstance(value, Mapping):
                value = value.get(part, MISSING)
            elif isinstance(value, list) and part.isdigit():
                value = value[int(part)] if int(part) < len(value) else MISSING
            else:
                value = MISSING
            if value is MISSING:
                break
    for flt, args in expr.filters:
        value = flt(value, *args)
    return value


def reference_truthy(text: str, env: dict[str, Any]) -> bool:
    value = reference_expression(text.removeprefix("!"), env)
    truthy = value is not MISSING and value is not None and value is not False and value not in ("", [], {})
    return truthy != text.startswith("!")


def reference(node: Any, env: dict[str, Any]) -> Any:
    """The template semantics, interpreted directly; ``$each`` extends a copy of the environment."""
    if isinstance(node, str):
        matches = list(PLACEHOLDER.finditer(node))
        if not matches:
            return node
        if len(matches) == 1 and matches[0].span() == (0, len(node)):
            inner = matches[0].group(1).strip()
            if PATH.match(inner):  # a whole path: plain dicts and lists only, None when absent
                root, *parts = inner.split(".")
                value = env.get(root)
                for part in parts:
                    if isinstance(value, dict):
                        value = value.get(part)
                    elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                        value = value[int(part)]
                    else:
                        return None
                    if value is None:
                        return None
                return value
            value = reference_expression(inner, env)
            return None if value is MISSING else value
        return PLACEHOLDER.sub(lambda m: text(reference_expression(m.group(1), env)), node)
    if isinstance(node, list):
        return [reference(item, env) for item in node]
    if isinstance(node, dict) and "$each" in node:
        values = reference_expression(node["$each"].strip("{} "), env)
        if not isinstance(values, list):
            values = [] if values is MISSING or values is None else [values]
        name = node.get("$as", "item")
        return [reference(node["$template"], {**env, name: v, "index": i}) for i, v in enumerate(values)]
    if isinstance(node, dict) and "$if" in node:
        return reference(node["$then"] if reference_truthy(node["$if"], env) else node.get("$else"), env)
    if isinstance(node, dict) and "$merge" in node:
        merged: dict[str, Any] = {}
        for part in node["$merge"]:
            if isinstance(value := reference(part, env), dict):
                merged.update(value)
        return merged
    if isinstance(node, dict):
        return {str(key): reference(value, env) for key, value in node.items()}
    return node


class Params(Mapping[str, Any]):
    """A read-only mapping that is not a dict (as a framework's query parameters would be)."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Body(dict[str, Any]):
    """A dict subclass: lookups must treat it as a dict."""


ENVS: list[dict[str, Any]] = [
    ENV,
    {},
    {"body": None, "path": [], "now": 0},
    {"body": ["a", {"b": "c"}], "path": "c_1", "item": {"to": ["x"]}},
    {"body": Body(ENV["body"]), "query": Params(limit=5, to=["q"]), "path": Params(id="p_1")},
    {"body": {"to": "+15555550100", "channel": "sent", "count": 0, "nested": {"deep": None}, "empty": []}},
]
TEMPLATES: list[Any] = [
    "{{ body.to.0 }}", "{{ body.to.5 }}", "{{ body.nested.deep.value }}", "{{ body.nested.deep.value.x }}",
    "{{ query.limit }}", "{{ path.id }}", "{{ path }}", "{{ body.1.b }}", "{{ item.to.0 }}", "{{ nothing }}",
    "{{ body.nothing.x | default('d') }}", "{{ query.limit | default(1) }}", "{{ body.count | str }}",
    "{{ body.empty | length }}", "{{ body.channel | first | exclude('sent') | default('sms') }}",
    "{{ body.to | first | upper }}", "{{ path.id | lower }}", "{{ body.nothing | str }}",
    "{{ body.missing | str }}", "{{ body.variables | str }}", "{{ body.ratio | default(1) }}",
    "q={{ query.limit }}&to={{ query.to }}&id={{ path.id }}", "{{ body.flag }}{{ body.off }}{{ body.nothing }}",
    "[{{ body.variables }}|{{ body.to | first }}|{{ body.count | exclude(3) }}]",
    {"$each": "body.to", "$template": {"to": "{{ item }}", "n": "{{ index }}", "c": "{{ body.count }}"}},
    {"$each": "query.to", "$as": "body", "$template": ["{{ body }}", "{{ body.to }}", "{{ item }}"]},
    {"$each": "body.channel | first", "$as": "index", "$template": "{{ index }}"},
    {"$each": "body", "$template": {"$each": "item", "$template": "{{ item }}"}},
    {"$if": "body.count", "$then": {"$each": "body.to", "$template": "{{ item }}"}, "$else": "none"},
    {"$if": "!body.nested.deep", "$then": "{{ body.nested }}", "$else": {"$merge": ["{{ body.nested }}", {"x": 1}]}},
    {"$if": "query.limit | default(0)", "$then": "{{ query.limit }}"},
    {"$merge": ["{{ body.variables }}", {"name": "{{ body.name | upper }}"}, "{{ body.to }}", {"$merge": []}]},
    {"a": ["{{ body.to.1 }}", 1, None, {"b": "{{ path.id }}"}], "c": {"d": True}, "e": "{{ body.count }}"},
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("env_index", range(len(ENVS)))
def test_renders_as_the_reference_interpreter(template: Any, env_index: int) -> None:
    env = ENVS[env_index]
    assert compile_template(template)(env) == reference(template, env)
    envelope = {"success": True, "data": "{{ data }}", "id": "{{ data.id }}", "raw": "<{{ data.id }}>"}
    data = {"id": "{{ path.id }}", "value": template}
    bound = compile_template(envelope, "test_mode.envelope", {"data": (data, "routes.0.data")})
    assert bound(env) == reference(envelope, {**env, "data": reference(data, env)})


@pytest.mark.parametrize("condition", [
    "body.count", "!body.count", "body.nested.deep", "!body.to.1", "query.limit", "!path.id", "body.empty",
    "body.channel | first | exclude('sent')", "!body.missing | default(0)", "path",
])
@pytest.mark.parametrize("env_index", range(len(ENVS)))
def test_conditions_match_the_reference(condition: str, env_index: int) -> None:
    env = ENVS[env_index]
    assert compile_condition(condition)(env) is reference_truthy(condition, env)


# --- bindings: the envelope around a route's data ---------------------------------------------------


def test_a_binding_is_rendered_once_and_seen_wherever_the_template_names_it() -> None:
    envelope = {"data": "{{ data }}", "again": "{{ data }}", "id": "{{ data.id }}", "text": "id={{ data.id }}",
                "list": {"$each": "body.to", "$as": "data", "$template": "{{ data }}"}}
    bound = compile_template(envelope, "test_mode.envelope", {"data": ({"id": "{{ uuid() }}"}, "routes.0.data")})
    out = bound(ENV)
    assert out["data"] is out["again"]
    assert out["id"] == out["data"]["id"] and out["text"] == f"id={out['data']['id']}"
    assert out["list"] == ENV["body"]["to"]  # $as shadows the binding
    assert bound(ENV)["id"] != out["id"]


def test_a_binding_error_names_the_binding_key_path() -> None:
    with pytest.raises(TemplateError, match=r"^routes\.3\.test_response\.0\.data\.x: unknown function nope\(\)"):
        compile_template({"data": "{{ data }}"}, "test_mode.envelope",
                         {"data": ({"x": "{{ nope() }}"}, "routes.3.test_response.0.data")})


# --- uuid --------------------------------------------------------------------------------------------

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_uuids_are_distinct_rfc_4122_version_4_strings_across_batches() -> None:
    draw = compile_template("{{ uuid() }}")
    values = [draw(ENV) for _ in range(2000)]
    assert len(set(values)) == len(values)
    assert all(UUID4.fullmatch(v) for v in values)
    assert all(str(uuid.UUID(v)) == v and uuid.UUID(v).variant == uuid.RFC_4122 for v in values)
    assert {v[19] for v in values} == set("89ab") and {v[15] for v in values} == set("0123456789abcdef")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_does_not_repeat_its_parents_uuids() -> None:
    draw = compile_template("{{ uuid() }}")
    draw(ENV)  # the parent now holds a partly used batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, draw(ENV).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert UUID4.fullmatch(child)
    assert child != draw(ENV)
