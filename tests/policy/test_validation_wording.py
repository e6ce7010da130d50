"""Schema wording added for provider packs such as SendGrid's (proxy/policy/validation.py):
``x-fields`` per keyword, and the ``{given}``, ``{expected}``, ``{count}`` and ``{value}`` placeholders."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import FieldError
from proxy.policy.validation import compile_validator, dot_path

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["from"],
    "properties": {
        "from": {
            "type": "object",
            "required": ["email"],
            "x-messages": {"required": "from is missing"},
            "x-fields": {"required": "from.email", "type": "from"},
            "properties": {
                "email": {
                    "type": "string",
                    "format": "email",
                    "x-messages": {"format": "bad from", "required": "from.email is missing",
                                   "type": "Invalid type. Expected: {expected}, given: {given}."},
                    "x-fields": {"format": "from"},
                },
            },
        },
        "tags": {"type": "array", "maxItems": 2, "x-messages": {"maxItems": "You provided {count} tags."},
                 "items": {"type": "string", "maxLength": 3, "x-message": "{value} is too long"}},
        "kind": {"enum": ["a", "b"], "x-message": "You provided {value}; {field} is {expected}."},
    },
}

validator = compile_validator(SCHEMA, {}, (), dot_path)


@pytest.mark.parametrize(("body", "finding"), [
    ({}, FieldError("from.email", "from is missing")),                 # x-fields.required beside the property
    ({"from": {}}, FieldError("from.email", "from.email is missing")),  # the default path
    ({"from": {"email": "John Doe"}}, FieldError("from", "bad from")),  # x-fields.format
    ({"from": "x"}, FieldError("from", "from must be an object")),
    ({"from": {"email": 5}}, FieldError("from.email", "Invalid type. Expected: string, given: integer.")),
    ({"from": {"email": ["a"]}}, FieldError("from.email", "Invalid type. Expected: string, given: array.")),
    ({"from": {"email": "a@b.co"}, "tags": ["a", "b", "c"]}, FieldError("tags", "You provided 3 tags.")),
    ({"from": {"email": "a@b.co"}, "tags": ["abcd"]}, FieldError("tags.0", "abcd is too long")),
    ({"from": {"email": "a@b.co"}, "kind": "c"}, FieldError("kind", "You provided c; kind is a/b.")),
])
def test_wording(body: Any, finding: FieldError) -> None:
    assert validator.check(body) == [finding]


def test_a_value_that_looks_like_a_placeholder_is_not_substituted() -> None:
    body = {"from": {"email": "a@b.co"}, "tags": ["{field}{count}"]}
    assert validator.check(body) == [FieldError("tags.0", "{field}{count} is too long")]
