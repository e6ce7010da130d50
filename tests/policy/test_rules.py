"""Validation rules (proxy/policy/rules.py): each rule alone, its findings and its option checks, and
a bad rule failing policy load with the file and key path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from proxy.errors import FieldError
from proxy.policy.loader import PolicyError, load_policy
from proxy.policy.rules import RULES, RuleConfigError, compile_rule, json_type, present, select, value_text


def run(options: dict[str, Any], body: Any) -> list[FieldError]:
    return list(compile_rule(options)(body))


def fields(options: dict[str, Any], body: Any) -> list[str | None]:
    return [finding.field for finding in run(options, body)]


# ---------------------------------------------------------------------------------------- paths


@pytest.mark.parametrize(("pattern", "body", "expected"), [
    ("a", {"a": 1}, [(("a",), 1)]),
    ("a", {"b": 1}, []),
    ("a.b", {"a": None}, []),
    ("a.*", {"a": [1, 2]}, [(("a", 0), 1), (("a", 1), 2)]),
    ("a.*", {"a": {"x": 1}}, [(("a", "x"), 1)]),
    ("a.*.b", {"a": [{"b": 1}, {}, "s", {"b": None}]}, [(("a", 0, "b"), 1), (("a", 3, "b"), None)]),
    ("a.1", {"a": [1, 2]}, [(("a", 1), 2)]),
    ("a.5", {"a": [1, 2]}, []),
    ("a.*", {"a": "string"}, []),
])
def test_select_reaches_every_match_and_nothing_else(pattern: str, body: Any,
                                                     expected: list[tuple[tuple[Any, ...], Any]]) -> None:
    assert list(select(body, tuple(pattern.split(".")))) == expected


@pytest.mark.parametrize(("pattern", "body", "expected"), [
    ("a", {"a": None}, True),                  # present even as null
    ("a", {}, False),
    ("p.*.s", {"p": [{"s": 1}, {"s": ""}]}, True),
    ("p.*.s", {"p": [{"s": 1}, {}]}, False),   # every element must have it
    ("p.*.s", {"p": []}, False),               # ... and there must be elements
    ("p.*.s", {"p": "x"}, False),
    ("p.0", {"p": [0]}, True),
])
def test_present_needs_every_element_of_a_wildcard(pattern: str, body: Any, expected: bool) -> None:
    assert present(body, tuple(pattern.split("."))) is expected


@pytest.mark.parametrize(("value", "name"), [
    (None, "null"), (True, "boolean"), (1, "integer"), (1.5, "number"), ("", "string"), ([], "array"), ({}, "object"),
])
def test_json_type(value: Any, name: str) -> None:
    assert json_type(value) == name


def test_value_text_is_bare_for_strings_json_otherwise_and_bounded() -> None:
    assert value_text("a b") == "a b"
    assert value_text([1, "x"]) == '[1,"x"]'
    assert len(value_text("x" * 1000)) == 200


# ---------------------------------------------------------------------------------------- required_unless

SUBJECT = {"rule": "required_unless", "path": "subject", "unless": ["template_id", "p.*.subject"],
           "message": "{path} is required", "help": "https://help"}


@pytest.mark.parametrize(("body", "expected"), [
    ({}, ["subject"]),
    ({"subject": "s"}, []),
    ({"subject": None}, []),                           # present: its type is the schema's business
    ({"template_id": "t"}, []),
    ({"p": [{"subject": "a"}, {"subject": "b"}]}, []),
    ({"p": [{"subject": "a"}, {}]}, ["subject"]),
    ({"p": []}, ["subject"]),
    ("not an object", []),
])
def test_required_unless(body: Any, expected: list[str]) -> None:
    assert fields(SUBJECT, body) == expected


def test_required_unless_wording_and_nested_paths() -> None:
    assert run(SUBJECT, {}) == [FieldError("subject", "subject is required", "https://help")]
    nested = {"rule": "required_unless", "path": "items.*.id", "message": "missing", "field": "{path}"}
    assert fields(nested, {"items": [{"id": 1}, {}, {"x": 2}, 5]}) == ["items.1.id", "items.2.id"]


# ---------------------------------------------------------------------------------------- unique_across

RECIPIENTS = {"rule": "unique_across", "scope": "p.*", "paths": ["to.*.email", "cc.*.email"],
              "case_insensitive": True, "first_only": True, "field": "{scope}",
              "message": "[{value}] again in {array} ({path})"}


def test_unique_across_names_the_repeat_its_list_and_its_scope() -> None:
    body = {"p": [{"to": [{"email": "a@x.com"}], "cc": [{"email": "A@X.com"}, {"email": "a@x.com"}]},
                  {"to": [{"email": "a@x.com"}]}]}  # the second personalization is its own scope
    # The repeated address is quoted masked: an error body never holds an email whole (issue 15).
    assert run(RECIPIENTS, body) == [FieldError("p.0", "[A***@X.com] again in p.0.cc (p.0.cc.0.email)")]


def test_unique_across_reports_every_repeat_unless_first_only() -> None:
    options = {**RECIPIENTS, "first_only": False, "case_insensitive": False}
    body = {"p": [{"to": [{"email": "a"}, {"email": "a"}], "cc": [{"email": "A"}, {"email": "a"}]}]}
    assert [f.message for f in run(options, body)] == ["[a] again in p.0.to (p.0.to.1.email)",
                                                       "[a] again in p.0.cc (p.0.cc.1.email)"]


@pytest.mark.parametrize(("values", "expected"), [
    (["a", "b"], []),
    (["a", "a"], ["categories"]),
    (["a", "A"], []),                  # case matters unless case_insensitive
    ([1, 1.0], ["categories"]),        # equal numbers
    ([True, 1, {"a": 1}, {"a": 1}], []),  # booleans and objects are the schema's business
])
def test_unique_across_without_scope(values: list[Any], expected: list[str]) -> None:
    options = {"rule": "unique_across", "paths": ["categories.*"], "field": "categories", "message": "{value}"}
    assert fields(options, {"categories": values}) == expected


# ---------------------------------------------------------------------------------------- max_total

TOTAL = {"rule": "max_total", "paths": ["p.*.to.*", "p.*.cc.*"], "max": 3, "message": "{count} > {max}"}


@pytest.mark.parametrize(("body", "expected"), [
    ({"p": [{"to": [1, 2], "cc": [3]}]}, []),
    ({"p": [{"to": [1, 2]}, {"to": [3], "cc": [4]}]}, ["4 > 3"]),
    ({"p": "x"}, []),
])
def test_max_total_counts_across_paths(body: Any, expected: list[str]) -> None:
    assert [f.message for f in run(TOTAL, body)] == expected
    assert all(f.field == "p" for f in run(TOTAL, body))  # default field: the first path's first segment


# ---------------------------------------------------------------------------------------- ordered_first

ORDER = {"rule": "ordered_first", "path": "content", "key": "type", "order": ["text/plain", "text/html"],
         "field": "content.{index}.type", "message": "{value} out of order at {path}"}


@pytest.mark.parametrize(("types", "expected"), [
    (["text/plain", "text/html", "text/calendar"], []),
    (["text/html"], []),
    (["text/plain", "text/plain"], []),
    (["text/calendar"], []),
    (["text/html", "text/plain"], ["content.1.type"]),
    (["text/calendar", "text/plain", "text/html"], ["content.1.type"]),  # one finding per array
    (["text/plain", "x/y", "text/html"], ["content.2.type"]),
])
def test_ordered_first(types: list[str], expected: list[str]) -> None:
    assert fields(ORDER, {"content": [{"type": t, "value": "v"} for t in types]}) == expected


def test_ordered_first_skips_what_the_schema_reports() -> None:
    assert fields(ORDER, {"content": {"type": "text/html"}}) == []
    assert fields(ORDER, {"content": ["text/html", {"type": ["x"]}, {"type": "text/plain"}]}) == ["content.2.type"]
    plain = {"rule": "ordered_first", "path": "xs", "order": [1, 2], "message": "m"}
    assert fields(plain, {"xs": [2, 1]}) == ["xs.1"]  # no key: the items themselves


# ---------------------------------------------------------------------------------------- max_future_seconds

FUTURE = {"rule": "max_future_seconds", "paths": ["send_at", "p.*.send_at"], "seconds": 72 * 3600,
          "message": "more than {seconds}s ahead: {value}"}


def test_max_future_seconds() -> None:
    now = int(time.time())
    ok = {"send_at": now + 71 * 3600, "p": [{"send_at": 1}, {"send_at": "soon"}, {"send_at": True}]}
    assert run(FUTURE, ok) == []
    late = {"send_at": now + 73 * 3600, "p": [{}, {"send_at": now + 100 * 3600}]}
    assert fields(FUTURE, late) == ["send_at", "p.1.send_at"]
    assert run(FUTURE, late)[0].message == f"more than 259200s ahead: {now + 73 * 3600}"


# ---------------------------------------------------------------------------------------- base64

B64 = {"rule": "base64", "paths": ["att.*.content"], "message": "not base64"}


@pytest.mark.parametrize(("content", "valid"), [
    ("aGVsbG8=", True), ("aGVsbG8gd29ybGQ=", True), ("", True), (7, True),  # empty/non-strings: the schema's
    ("aGVsbG8", False), ("not base64!", False), ("aGVs\nbG8=", False), ("aGVsbG8=é", False),
])
def test_base64(content: Any, valid: bool) -> None:
    assert (run(B64, {"att": [{"content": content}]}) == []) is valid


def test_base64_may_ignore_mime_line_breaks() -> None:
    assert run({**B64, "ignore_whitespace": True}, {"att": [{"content": "aGVs\r\nbG8="}]}) == []


# ---------------------------------------------------------------------------------------- forbidden_keys

HEADERS = {"rule": "forbidden_keys", "paths": ["headers", "p.*.headers"], "keys": ["To", "x-sg-id"],
           "case_insensitive": True, "message": "{key} is reserved"}


def test_forbidden_keys() -> None:
    body = {"headers": {"to": "x", "X-Custom": "y", "X-SG-ID": "z"}, "p": [{"headers": {"To": "x"}}, {"headers": 5}]}
    assert [(f.field, f.message) for f in run(HEADERS, body)] == [
        ("headers", "to is reserved"), ("headers", "X-SG-ID is reserved"), ("p.0.headers", "To is reserved")]
    assert run({**HEADERS, "case_insensitive": False}, {"headers": {"to": "x"}}) == []


# ---------------------------------------------------------------------------------------- options


@pytest.mark.parametrize(("options", "problem"), [
    ({"rule": "nope", "message": "m"}, "unknown rule 'nope'"),
    ({"message": "m"}, "unknown rule None"),
    ({"rule": "required_unless", "path": "a"}, "message: required"),
    ({"rule": "required_unless", "message": "m"}, "path: required"),
    ({"rule": "required_unless", "path": "a", "message": ""}, "message: must not be empty"),
    ({"rule": "required_unless", "path": "a.*", "message": "m"}, "path: must end with a key"),
    ({"rule": "required_unless", "path": "a..b", "message": "m"}, "path: 'a..b' is not a dotted path"),
    ({"rule": "required_unless", "path": "a", "unless": "b", "message": "m"}, "unless: expected list"),
    ({"rule": "required_unless", "path": "a", "unless": [1], "message": "m"}, "unless: expected a non-empty list"),
    ({"rule": "required_unless", "path": "a", "message": "m", "extra": 1}, "extra: unknown option"),
    ({"rule": "unique_across", "paths": [], "message": "m"}, "paths: expected a non-empty list"),
    ({"rule": "unique_across", "paths": ["a"], "case_insensitive": "yes", "message": "m"},
     "case_insensitive: expected bool"),
    ({"rule": "max_total", "paths": ["a"], "max": 0, "message": "m"}, "max: must be at least 1"),
    ({"rule": "max_total", "paths": ["a"], "max": True, "message": "m"}, "max: expected int, got a boolean"),
    ({"rule": "max_total", "paths": ["a"], "max": "10", "message": "m"}, "max: expected int"),
    ({"rule": "ordered_first", "path": "a", "order": [], "message": "m"}, "order: expected a non-empty list"),
    ({"rule": "ordered_first", "path": "a", "order": ["x", "x"], "message": "m"}, "order: lists a value twice"),
    ({"rule": "max_future_seconds", "paths": ["a"], "message": "m"}, "seconds: required"),
    ({"rule": "base64", "paths": ["a"], "message": "m", "help": 3}, "help: expected str"),
    ({"rule": "forbidden_keys", "paths": ["a"], "keys": [""], "message": "m"}, "keys: expected a non-empty list"),
])
def test_bad_options_are_refused_at_compile_time(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(RuleConfigError, match="^" + problem.replace("(", r"\(").replace("*", r"\*")):
        compile_rule(options)


def test_every_registered_rule_needs_a_message() -> None:
    for name in RULES:
        with pytest.raises(RuleConfigError, match="message: required"):
            compile_rule({"rule": name})


POLICY = """
version: 1
name: demo
upstream: {base_url: "https://provider.example"}
keys: {header: x-api-key}
dialect: {error: {message: "{{ error.message }}"}}
test_mode: {triggers: [{body: test}]}
routes:
  - id: send
    method: POST
    path: /send
    scope: write
    rules:
      - {rule: required_unless, path: subject, message: "subject is required"}
      - {rule: max_total, paths: [to.*], max: -1, message: "too many"}
"""


def test_a_bad_rule_fails_policy_load_with_file_and_key_path(tmp_path: Path) -> None:
    file = tmp_path / "demo.yaml"
    file.write_text(POLICY)
    with pytest.raises(PolicyError) as caught:
        load_policy(file)
    assert str(caught.value) == f"{file}: routes.0.rules.1: max: must be at least 1"


def test_rules_run_after_the_schema_on_the_compiled_route(tmp_path: Path) -> None:
    file = tmp_path / "demo.yaml"
    file.write_text(POLICY.replace("max: -1", "max: 2"))
    route = load_policy(file).route_list[0]
    assert route.validator.check({"to": [1, 2, 3]}) == [FieldError("subject", "subject is required"),
                                                        FieldError("to", "too many")]
