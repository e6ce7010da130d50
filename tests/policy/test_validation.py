"""Body validation: the fast and the all-errors validator agree; findings are worded from the schema."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import FieldError
from proxy.policy.validation import (
    FORMATS,
    BodyValidator,
    FieldStyle,
    SchemaCompileError,
    bracket_path,
    compile_validator,
    dot_path,
)

DEFINITIONS: dict[str, Any] = {
    "phone": {"type": "string", "format": "e164", "x-message": "{field} must be a valid phone number"},
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to", "text"],
    "properties": {
        "to": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/phone"}},
        "text": {"type": "string", "minLength": 1, "maxLength": 10},
        "email": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"},
        "at": {"type": "string", "format": "date-time"},
        "count": {"type": "integer", "minimum": 1, "x-messages": {"minimum": "{field} must be positive"},
                  "x-help": "https://docs.example/count"},
        "channel": {"enum": ["sms", "whatsapp"]},
        "template": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "x-field": "template_name"},
                "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "meta": {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": {"^x_": {}},
            "properties": {"source": {"type": "string"}},
        },
    },
}

VALID = [
    {"to": ["+15555550100"], "text": "hi"},
    {"to": ["+15555550100", "+442071838750"], "text": "0123456789", "email": "ada@example.com",
     "id": "123e4567-e89b-12d3-a456-426614174000", "at": "2024-01-15T10:30:00Z", "count": 1, "channel": "sms",
     "template": {"name": "welcome", "parameters": {"a": "b"}}, "meta": {"source": "ci", "x_trace": 1}},
    {"to": ["+15555550100"], "text": "hi", "at": "2024-01-15 10:30:00.123+02:00", "count": 2.0},
]

# (body, findings with the bracket style, findings with the dot style): every finding at once, sorted by path.
INVALID: list[tuple[Any, list[FieldError], list[FieldError]]] = [
    ({"text": "hi"}, [FieldError("to", "to is required")], [FieldError("to", "to is required")]),
    # missing properties of one object are listed in the schema's `required` order
    ({}, [FieldError("to", "to is required"), FieldError("text", "text is required")],
     [FieldError("to", "to is required"), FieldError("text", "text is required")]),
    ({"to": ["x"]}, [FieldError("text", "text is required"), FieldError("to[0]", "to[0] must be a valid phone number")],
     [FieldError("text", "text is required"), FieldError("to.0", "0 must be a valid phone number")]),
    ([], [FieldError(None, "body must be an object")], [FieldError(None, "body must be an object")]),
    ({"to": ["+15555550100"], "text": "hi", "extra": 1, "more": 2},
     [FieldError("extra", "extra is not a recognized field"), FieldError("more", "more is not a recognized field")],
     [FieldError("extra", "extra is not a recognized field"), FieldError("more", "more is not a recognized field")]),
    ({"to": ["+15555550100"], "text": "hi", "meta": {"x_ok": 1, "bogus": 2}},
     [FieldError("meta.bogus", "bogus is not a recognized field")],
     [FieldError("meta.bogus", "bogus is not a recognized field")]),
    ({"to": ["+15555550100", "555", "+15555550101", "nope"], "text": ""},
     [FieldError("text", "text must not be empty"),
      FieldError("to[1]", "to[1] must be a valid phone number"),
      FieldError("to[3]", "to[3] must be a valid phone number")],
     [FieldError("text", "text must not be empty"),
      FieldError("to.1", "1 must be a valid phone number"),
      FieldError("to.3", "3 must be a valid phone number")]),
    ({"to": [], "text": "x" * 11},
     [FieldError("text", "text must be at most 10 characters"), FieldError("to", "to must not be empty")],
     [FieldError("text", "text must be at most 10 characters"), FieldError("to", "to must not be empty")]),
    ({"to": ["+15555550100"], "text": "hi", "count": 0},
     [FieldError("count", "count must be positive", "https://docs.example/count")],
     [FieldError("count", "count must be positive", "https://docs.example/count")]),
    ({"to": ["+15555550100"], "text": "hi", "count": "1"},
     [FieldError("count", "count must be an integer", "https://docs.example/count")],
     [FieldError("count", "count must be an integer", "https://docs.example/count")]),
    ({"to": ["+15555550100"], "text": "hi", "channel": "fax"},
     [FieldError("channel", "channel must be one of: sms, whatsapp")],
     [FieldError("channel", "channel must be one of: sms, whatsapp")]),
    # x-field renames the property for its own failures, including its absence
    ({"to": ["+15555550100"], "text": "hi", "template": {"parameters": {"n": 1}}},
     [FieldError("template_name", "template_name is required"),
      FieldError("template.parameters.n", "n must be a string")],
     [FieldError("template_name", "template_name is required"),
      FieldError("template.parameters.n", "n must be a string")]),
    ({"to": ["+15555550100"], "text": "hi", "template": {"name": 5}},
     [FieldError("template_name", "template_name must be a string")],
     [FieldError("template_name", "template_name must be a string")]),
    ({"to": ["+15555550100"], "text": "hi", "email": "ada@", "id": "123", "at": "2024-01-15"},
     [FieldError("at", "at must be a valid date-time"), FieldError("email", "email must be a valid email"),
      FieldError("id", "id must be a valid uuid")],
     [FieldError("at", "at must be a valid date-time"), FieldError("email", "email must be a valid email"),
      FieldError("id", "id must be a valid uuid")]),
]


def validator(schema: Any = SCHEMA, style: FieldStyle = bracket_path, rules: tuple[Any, ...] = ()) -> BodyValidator:
    return compile_validator(schema, DEFINITIONS, rules, style)


BRACKET = validator(style=bracket_path)
DOT = validator(style=dot_path)


def fast_accepts(v: BodyValidator, body: Any) -> bool:
    assert v.fast is not None
    return bool(v.fast.is_valid(body))


def slow_accepts(v: BodyValidator, body: Any) -> bool:
    assert v.slow is not None
    return bool(v.slow.is_valid(body))


@pytest.mark.parametrize("body", VALID)
def test_a_valid_body_has_no_findings_and_both_validators_accept_it(body: Any) -> None:
    assert BRACKET.check(body) == []
    assert DOT.check(body) == []
    assert fast_accepts(BRACKET, body) and slow_accepts(BRACKET, body)


@pytest.mark.parametrize(("body", "bracket", "dot"), INVALID)
def test_an_invalid_body_gets_every_finding_at_once(
    body: Any, bracket: list[FieldError], dot: list[FieldError]
) -> None:
    assert not fast_accepts(BRACKET, body) and not slow_accepts(BRACKET, body)
    assert BRACKET.check(body) == bracket
    assert DOT.check(body) == dot


def test_findings_are_in_reading_order_with_array_indices_compared_as_numbers() -> None:
    to = ["+15555550100"] * 12
    to[10], to[2] = "x", "y"
    body = {"to": to, "text": "hi"}
    assert [f.field for f in BRACKET.check(body)] == ["to[2]", "to[10]"]


def test_identical_findings_are_reported_once() -> None:
    v = validator({"allOf": [{"type": "string"}, {"type": "string", "minLength": 1}, {"type": "string"}]})
    assert v.check(5) == [FieldError(None, "body must be a string")]


@pytest.mark.parametrize(
    ("schema", "body", "expected"),
    [
        # x-message: any failure of the subschema
        ({"properties": {"a": {"type": "integer", "minimum": 3, "x-message": "{field}: 3 or more"}}}, {"a": 1},
         [FieldError("a", "a: 3 or more")]),
        # x-messages beats x-message for its keyword
        ({"properties": {"a": {"type": "integer", "x-message": "generic", "x-messages": {"type": "need a number"}}}},
         {"a": "x"}, [FieldError("a", "need a number")]),
        # required: the missing property's own x-messages.required, then the object's, then its x-message
        ({"required": ["a"], "properties": {"a": {"x-messages": {"required": "own {field}"}}},
          "x-messages": {"required": "object {field}"}}, {}, [FieldError("a", "own a")]),
        ({"required": ["a"], "properties": {"a": {"x-message": "own x-message"}},
          "x-messages": {"required": "object {field}"}}, {}, [FieldError("a", "object a")]),
        ({"required": ["a"], "properties": {"a": {"x-message": "{field} please"}}}, {}, [FieldError("a", "a please")]),
        # required: x-field and x-help of the missing property
        ({"required": ["a"], "properties": {"a": {"x-field": "alpha", "x-help": "https://h"}}}, {},
         [FieldError("alpha", "alpha is required", "https://h")]),
        ({"required": ["a"], "x-help": "https://object"}, {}, [FieldError("a", "a is required", "https://object")]),
        # x-field names the field for the subschema's own failures (Sent: "Provide either text or template")
        ({"anyOf": [{"required": ["text"]}, {"required": ["template"]}], "x-field": "text",
          "x-messages": {"anyOf": "Provide either text or template"}}, {},
         [FieldError("text", "Provide either text or template")]),
        # additionalProperties: its own x-messages entry
        ({"additionalProperties": False, "x-messages": {"additionalProperties": "{field} is unknown"}}, {"zz": 1},
         [FieldError("zz", "zz is unknown")]),
        # a false schema refuses everything
        (False, {}, [FieldError(None, "body is invalid")]),
    ],
)
def test_wording_comes_from_the_schema(schema: Any, body: Any, expected: list[FieldError]) -> None:
    assert validator(schema).check(body) == expected


@pytest.mark.parametrize(
    ("parts", "bracket", "dot"),
    [
        ([], None, None),
        (["to"], "to", "to"),
        (["to", 0], "to[0]", "to.0"),
        (["template", "parameters", "name"], "template.parameters.name", "template.parameters.name"),
        (["personalizations", 0, "to", 1, "email"], "personalizations[0].to[1].email", "personalizations.0.to.1.email"),
        ([0, "a"], "[0].a", "0.a"),
    ],
)
def test_field_styles(parts: list[str | int], bracket: str | None, dot: str | None) -> None:
    assert (bracket_path(parts), dot_path(parts)) == (bracket, dot)


def test_rules_run_after_the_schema_and_add_their_findings() -> None:
    def no_bob(body: Any) -> list[FieldError]:
        return [FieldError("name", "no bobs")] if isinstance(body, dict) and body.get("name") == "bob" else []

    v = validator({"type": "object", "required": ["n"]}, rules=(no_bob,))
    assert v.check({"n": 1}) == []
    assert v.check({"name": "bob"}) == [FieldError("n", "n is required"), FieldError("name", "no bobs")]
    assert validator(None, rules=(no_bob,)).check({"name": "bob"}) == [FieldError("name", "no bobs")]


def test_no_schema_accepts_anything() -> None:
    assert validator(None).check({"anything": [1, 2]}) == []
    assert validator(True).check("whatever") == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strng"}, "is not valid under any of the given schemas"),
        ({"properties": {"a": {"minLength": -1}}}, "-1"),
        ({"$ref": "#/$defs/nope"}, "Unresolvable ref"),
        ({"properties": {"a": {"pattern": "("}}}, "is not a 'regex'"),
    ],
)
def test_a_bad_schema_fails_to_compile(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaCompileError, match=message):
        validator(schema)


# --------------------------------------------------------------------------- formats

FORMAT_CASES = [
    ("e164", "+15555550100", True),
    ("e164", "+442071838750", True),
    ("e164", "+123456789012345", True),
    ("e164", "+1234567890123456", False),
    ("e164", "15555550100", False),
    ("e164", "+05555550100", False),
    ("e164", "+1 555 555 0100", False),
    ("e164", "+15555550100\n", False),
    ("e164", "+1\u0665\u0665\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660", False),  # Arabic-Indic
    ("email", "ada@example.com", True),
    ("email", "ada.lovelace+tag@mail.example.co.uk", True),
    ("email", "ada@example", False),
    ("email", "ada@@example.com", False),
    ("email", "ada lovelace@example.com", False),
    ("email", "@example.com", False),
    ("email", "ada@example.com\n", False),
    ("email", "ada@-example.com", False),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", True),
    ("uuid", "123E4567-E89B-12D3-A456-426614174000", True),
    ("uuid", "123e4567e89b12d3a456426614174000", False),
    ("uuid", "123e4567-e89b-12d3-a456-42661417400g", False),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000\n", False),
    ("date-time", "2024-01-15T10:30:00Z", True),
    ("date-time", "2024-01-15t10:30:00.123456+05:30", True),
    ("date-time", "2024-01-15 10:30:00-01:00", True),
    ("date-time", "2024-01-15T10:30:00", False),
    ("date-time", "2024-01-15", False),
    ("date-time", "2024-01-15T10:30:00Z\n", False),
    ("date-time", "\uff12\uff10\uff12\uff14-01-15T10:30:00Z", False),  # fullwidth digits
    ("uri", "https://example.com/hook", True),
    ("uri", "example.com/hook", False),
    ("ipv4", "192.168.0.1", True),
    ("ipv4", "999.1.1.1", False),
    ("date", "2024-02-29", True),
    ("date", "2023-02-29", False),
    ("hostname", "api.example.com", True),
    ("hostname", "-bad-.example.com", False),
    ("regex", "^[a-z]+$", True),
    ("regex", "(", False),
]


@pytest.mark.parametrize(("fmt", "value", "valid"), FORMAT_CASES)
def test_formats_are_checked_alike_by_both_validators(fmt: str, value: str, valid: bool) -> None:
    v = validator({"type": "object", "properties": {"v": {"type": "string", "format": fmt}}})
    body = {"v": value}
    assert fast_accepts(v, body) is valid
    assert slow_accepts(v, body) is valid
    wording = "E.164 phone number" if fmt == "e164" else fmt
    assert v.check(body) == ([] if valid else [FieldError("v", f"v must be a valid {wording}")])


def test_an_unknown_format_is_ignored_by_both_validators() -> None:
    v = validator({"type": "string", "format": "no-such-format"})
    assert fast_accepts(v, "anything") and slow_accepts(v, "anything")


@pytest.mark.parametrize("fmt", ["json-pointer", "uri-reference", "idn-email", "iri", "uri-template"])
def test_a_format_the_gateway_does_not_check_is_unchecked_by_both(fmt: str) -> None:
    v = validator({"type": "string", "format": fmt})
    assert fast_accepts(v, "not valid at all \\ ~2") and slow_accepts(v, "not valid at all \\ ~2")


PATTERN_CASES = [
    # Python's \Z (end of string): the Rust engine has no \Z, so patterns run in Python for both.
    (r"^[^;\r\n]*\Z", "plain text", True),
    (r"^[^;\r\n]*\Z", "semi;colon", False),
    (r"^[^;\r\n]*\Z", "new\nline", False),
    (r"^[!-9;-~]+\Z", "X-Custom-Header", True),
    (r"^[!-9;-~]+\Z", "Bad:Header", False),
    (r"[0-9]{3}", "abc123def", True),  # search, not match: unanchored like JSON Schema's pattern
    (r"(?i)^abc$", "ABC", True),
]


@pytest.mark.parametrize(("pattern", "value", "valid"), PATTERN_CASES)
def test_a_pattern_means_the_same_to_both_validators(pattern: str, value: str, valid: bool) -> None:
    v = validator({"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}})
    assert fast_accepts(v, {"v": value}) is valid
    assert slow_accepts(v, {"v": value}) is valid


def test_patterns_are_found_wherever_a_subschema_can_be_but_data_is_left_alone() -> None:
    v = validator({
        "type": "object",
        "properties": {
            "enum": {"type": "string", "pattern": r"^a+\Z"},  # a property named like a keyword
            "pattern": {"type": "string", "pattern": r"^b+\Z"},
            "list": {"type": "array", "items": {"anyOf": [{"pattern": r"^c\Z"}, {"type": "integer"}]}},
            "kind": {"enum": [{"pattern": "x"}]},  # data that looks like a schema
        },
        "additionalProperties": {"pattern": r"^d\Z"},
    })
    good = {"enum": "aa", "pattern": "bb", "list": ["c", 1], "kind": {"pattern": "x"}, "extra": "d"}
    assert fast_accepts(v, good) and slow_accepts(v, good)
    for key, bad in [("enum", "ab"), ("pattern", "bc"), ("list", ["c", "cc"]), ("kind", {"pattern": "y"}),
                     ("extra", "dd")]:
        body = {**good, key: bad}
        assert not fast_accepts(v, body) and not slow_accepts(v, body), key


_FORMAT_VALIDATORS = {name: validator({"type": "string", "format": name}) for name in [*FORMATS, "regex"]}
_OURS = ["email", "e164", "uuid", "date-time", "uri"]


@settings(max_examples=300, database=None, deadline=None)
@given(
    name=st.sampled_from(sorted(_FORMAT_VALIDATORS)),
    value=st.one_of(
        st.text(),
        st.text(alphabet="+0123456789-:.TZ@abcdef ", max_size=40),
        st.sampled_from(_OURS).flatmap(lambda n: st.from_regex(FORMATS[n])),
        st.sampled_from(_OURS).flatmap(lambda n: st.from_regex(FORMATS[n]).map(lambda s: s + "\n")),
    ),
)
def test_for_any_string_the_fast_validator_accepts_exactly_what_the_slow_one_does(name: str, value: str) -> None:
    v = _FORMAT_VALIDATORS[name]
    assert fast_accepts(v, value) == slow_accepts(v, value)
    assert (v.check(value) == []) == slow_accepts(v, value)


@settings(max_examples=200, database=None, deadline=None)
@given(value=st.text())
def test_e164_is_a_plus_then_two_to_fifteen_ascii_digits(value: str) -> None:
    expected = (
        3 <= len(value) <= 16 and value[0] == "+" and value[1] in "123456789"
        and all(c in "0123456789" for c in value[1:])
    )
    assert fast_accepts(_FORMAT_VALIDATORS["e164"], value) is expected
