"""Route body validation: JSON Schema compiled once, two validators, one verdict.

The fast validator (fastjsonschema, ~1.3 µs) runs on every request; only when it fails does the
all-errors validator (jsonschema, ~24 µs) run to list every finding at once
(shared/reference/performance.md). Both share the same format checks, so they agree.

Wording is data in the schema, next to the rule it explains:

* ``x-message``: the message for any failure of this subschema (``{field}`` is substituted);
* ``x-messages: {keyword: message}``: per keyword (``required`` is looked up on the missing
  property's own subschema first, then on the object's);
* ``x-field``: report this field name instead of the instance path;
* ``x-fields: {keyword: field}``: per keyword (``required`` on the missing property's subschema);
* ``x-help``: a help text or link (SendGrid's ``help``).

Besides ``{field}``, messages may say ``{given}`` (the JSON type of the failing value),
``{expected}`` (the keyword's argument, e.g. the type asked for; a list joined with ``/``),
``{count}`` (the value's length) and ``{value}`` (the value itself, as text) — enough for wording
such as gojsonschema's ``Invalid type. Expected: string, given: integer.``

Checks JSON Schema cannot express (uniqueness across arrays, totals, conditional requirements)
are *rules* (:mod:`proxy.policy.rules`), listed per route and run after the schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import fastjsonschema
from fastjsonschema.draft07 import CodeGeneratorDraft07
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaFinding

from proxy.errors import FieldError
from proxy.policy.rules import RuleCheck, json_type, value_text

# One definition of each format, handed to both validators so they cannot disagree. ``\Z``, not ``$``:
# ``$`` also matches before a trailing newline, so "+15555550100\n" would pass as E.164.
FORMATS: dict[str, str] = {
    # fastjsonschema checks these on its own; jsonschema must check the very same patterns.
    **CodeGeneratorDraft07.FORMAT_REGEXS,
    "email": r"^[^@\s\"<>(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z",
    "e164": r"^\+[1-9][0-9]{1,14}\Z",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z",
    "date-time": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z",
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+\Z",
}

_FORMAT_CHECKER = FormatChecker(formats=())
for _name, _pattern in FORMATS.items():
    _FORMAT_CHECKER.checks(_name)(
        lambda value, _rx=re.compile(_pattern): not isinstance(value, str) or bool(_rx.match(value))
    )


@_FORMAT_CHECKER.checks("regex")
def _is_regex(value: object) -> bool:
    """fastjsonschema's own ``regex`` check (it compiles the string), so the two agree here too."""
    if not isinstance(value, str):
        return True
    try:
        re.compile(value)
    except re.error:
        return False
    return True


FieldStyle = Callable[[Sequence[str | int]], str | None]


def dot_path(parts: Sequence[str | int]) -> str | None:
    """``personalizations.0.to.0.email`` (SendGrid's style)."""
    return ".".join(str(p) for p in parts) or None


def bracket_path(parts: Sequence[str | int]) -> str | None:
    """``to[0]`` / ``template.parameters.name`` (Sent's style)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


_TYPE_NAMES = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


def _default_message(error: SchemaFinding) -> str:
    kw, value = error.validator, cast(Any, error.validator_value)
    if kw == "type":
        names = value if isinstance(value, list) else [value]
        return "{field} must be " + " or ".join(_TYPE_NAMES.get(str(n), str(n)) for n in names)
    if kw == "required":
        return "{field} is required"
    if kw in {"enum", "const"}:
        options = value if kw == "enum" else [value]
        return "{field} must be one of: " + ", ".join(str(o) for o in options)
    if kw == "pattern":
        return "{field} has an invalid format"
    if kw == "format":
        return "{field} must be a valid " + str(value).replace("e164", "E.164 phone number")
    if kw == "minLength":
        return "{field} must not be empty" if value == 1 else f"{{field}} must be at least {value} characters"
    if kw == "maxLength":
        return f"{{field}} must be at most {value} characters"
    if kw == "minItems":
        return "{field} must not be empty" if value == 1 else f"{{field}} must have at least {value} items"
    if kw == "maxItems":
        return f"{{field}} must have at most {value} items"
    if kw == "uniqueItems":
        return "{field} must not contain duplicates"
    if kw in {"minimum", "exclusiveMinimum"}:
        return f"{{field}} must be {'at least' if kw == 'minimum' else 'greater than'} {value}"
    if kw in {"maximum", "exclusiveMaximum"}:
        return f"{{field}} must be {'at most' if kw == 'maximum' else 'less than'} {value}"
    if kw == "additionalProperties":
        return "{field} is not a recognized field"
    if kw in {"minProperties"}:
        return "{field} must not be empty"
    return "{field} is invalid"


@dataclass(frozen=True, slots=True)
class BodyValidator:
    """``check(body)`` returns no findings for a valid body, else every finding at once."""

    fast: Callable[[Any], Any] | None
    slow: Draft7Validator | None
    rules: tuple[RuleCheck, ...]
    field_style: FieldStyle

    def check(self, body: Any) -> list[FieldError]:
        findings: list[FieldError] = []
        if self.fast is not None and self.slow is not None:
            try:
                self.fast(body)
            except fastjsonschema.JsonSchemaValueException as fast_error:
                findings = self._all_findings(body, fast_error)
        for rule in self.rules:
            findings.extend(rule(body))
        return findings

    def _all_findings(self, body: Any, fast_error: Exception) -> list[FieldError]:
        assert self.slow is not None
        errors = sorted(self.slow.iter_errors(body), key=lambda e: _path_order(e.absolute_path))
        findings = [finding for error in errors for finding in self._describe(error)]
        if not findings:  # validators disagreed: trust the one that failed, with its own words
            findings = [FieldError(None, str(fast_error))]
        return _dedupe(findings)

    def _describe(self, error: SchemaFinding) -> Iterable[FieldError]:
        schema = error.schema if isinstance(error.schema, dict) else {}
        path = list(error.absolute_path)
        if error.validator == "required":
            instance = error.instance if isinstance(error.instance, dict) else {}
            props = schema.get("properties", {})
            for name in cast(list[str], error.validator_value):
                if name in instance:
                    continue
                own = props.get(name, {}) if isinstance(props.get(name), dict) else {}
                message = (own.get("x-messages", {}).get("required") or schema.get("x-messages", {}).get("required")
                           or own.get("x-message") or _default_message(error))
                field = (own.get("x-fields", {}).get("required") or own.get("x-field")
                         or self.field_style([*path, name]))
                yield self._finding(message, field, own.get("x-help") or schema.get("x-help"), error)
            return
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(schema.get("properties", {}))
            patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
            for name in error.instance:
                if name not in known and not any(p.search(name) for p in patterns):
                    message = schema.get("x-messages", {}).get("additionalProperties") or _default_message(error)
                    yield self._finding(message, self.field_style([*path, name]), schema.get("x-help"), error)
            return
        message = (schema.get("x-messages", {}).get(str(error.validator)) or schema.get("x-message")
                   or _default_message(error))
        field = schema.get("x-fields", {}).get(str(error.validator)) or schema.get("x-field") or self.field_style(path)
        yield self._finding(message, field, schema.get("x-help"), error)

    @staticmethod
    def _finding(message: str, field: str | None, help_text: str | None, error: SchemaFinding) -> FieldError:
        label = field.rsplit(".", 1)[-1] if field else "body"
        if "{" in message:
            message = message.replace("{field}", label)
            instance, expected = error.instance, cast(Any, error.validator_value)
            if "{given}" in message:
                message = message.replace("{given}", json_type(instance))
            if "{expected}" in message:
                names = expected if isinstance(expected, list) else [expected]
                message = message.replace("{expected}", "/".join(value_text(n) for n in names))
            if "{count}" in message and isinstance(instance, list | dict | str):
                message = message.replace("{count}", str(len(instance)))
            if "{value}" in message:  # last: the value's own text is never substituted again
                message = message.replace("{value}", value_text(instance))
        return FieldError(field, message, help_text)


def _path_order(path: Iterable[str | int]) -> list[tuple[int, str]]:
    """Instance paths in reading order: ``to[2]`` before ``to[10]`` (array indices compare as numbers)."""
    return [(part, "") if isinstance(part, int) else (-1, part) for part in path]


def _dedupe(findings: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    out = []
    for finding in findings:
        if finding not in seen:
            seen.add(finding)
            out.append(finding)
    return out


class SchemaCompileError(ValueError):
    pass


def compile_validator(
    schema: dict[str, Any] | bool | None,
    definitions: dict[str, Any],
    rules: tuple[RuleCheck, ...],
    field_style: FieldStyle,
) -> BodyValidator:
    """Compile a route schema (shared definitions available as ``#/$defs/<name>``)."""
    if schema is None:
        return BodyValidator(None, None, rules, field_style)
    full: dict[str, Any] | bool
    if isinstance(schema, dict):
        full = {"$schema": "http://json-schema.org/draft-07/schema#", **schema}
        if definitions:
            full["$defs"] = {**definitions, **full.get("$defs", {})}
    else:
        full = schema
    try:
        Draft7Validator.check_schema(full)
        slow = Draft7Validator(full, format_checker=_FORMAT_CHECKER)
        fast = fastjsonschema.compile(full, formats=FORMATS, use_default=False)
    # Not jsonschema's RefResolutionError: it is deprecated (merely naming it warns), and a bad $ref
    # already fails in fastjsonschema.compile as a JsonSchemaDefinitionException.
    except (SchemaError, fastjsonschema.JsonSchemaDefinitionException) as exc:
        raise SchemaCompileError(getattr(exc, "message", str(exc))) from exc
    return BodyValidator(fast, slow, rules, field_style)
