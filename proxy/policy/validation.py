"""Route body validation: JSON Schema compiled once, two validators, one verdict.

The fast validator (jsonschema-rs, compiled Rust, ~1 µs) runs on every request; only when it fails
does the all-errors validator (jsonschema's Draft 7, ~24 µs; :mod:`proxy.policy.all_errors`) run to
list the findings at once (shared/reference/performance.md). Both check ``pattern`` with Python's
``re`` (jsonschema-rs calls back into Python for it) and formats with the same patterns
(:data:`FORMATS`, run natively by jsonschema-rs), so they agree.

Explaining is bounded (security issue, item 2; :mod:`proxy.policy.findings`): at most
:data:`MAX_FINDINGS` findings, then a note that the list was cut; the all-errors pass and the rules
each within a step budget. An ordinary body gets every finding, as before.

Wording is data in the schema, next to the rule it explains:

* ``x-message``: the message for any failure of this subschema (``{field}`` is substituted);
* ``x-messages: {keyword: message}``: per keyword (``required`` is looked up on the missing
  property's own subschema first, then on the object's);
* ``x-field``: report this field name instead of the instance path;
* ``x-fields: {keyword: field}``: per keyword (``required`` on the missing property's subschema);
* ``x-help``: a help text or link (SendGrid's ``help``); ``x-helps: {keyword: help}`` per keyword.

Besides ``{field}``, messages may say ``{given}`` (the JSON type of the failing value),
``{expected}`` (the keyword's argument, e.g. the type asked for; a list joined with ``/``),
``{count}`` (the value's length) and ``{value}`` (the value itself, as text) — enough for wording
such as gojsonschema's ``Invalid type. Expected: string, given: integer.``

Checks JSON Schema cannot express (uniqueness across arrays, totals, conditional requirements)
are *rules* (:mod:`proxy.policy.rules`), listed per route and run after the schema.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import jsonschema_rs
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaFinding
from jsonschema.protocols import Validator as SchemaValidator

from proxy.errors import FieldError
from proxy.policy.all_errors import AllErrorsValidator
from proxy.policy.findings import Findings, OutOfSteps, metered, spend
from proxy.policy.rules import RuleCheck, json_type, value_text

# The formats the gateway checks, as patterns. ``\Z``, not ``$``: ``$`` also matches before a
# trailing newline, so "+15555550100\n" would pass as E.164. ``[0-9]``, not ``\d``: ``\d`` takes any
# Unicode digit.
FORMATS: dict[str, str] = {
    "email": r"^[^@\s\"<>(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z",
    "e164": r"^\+[1-9][0-9]{1,14}\Z",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z",
    "date-time": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z",
    "time": r"^[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z",
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+\Z",
    "hostname": r"^(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z",
    "ipv4": r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z",
}


def _is_date(value: str) -> bool:
    if not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return "%" not in value


def _is_regex(value: str) -> bool:
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _searcher(pattern: str) -> Callable[[str], bool]:
    search = re.compile(pattern).search
    return lambda value: search(value) is not None


def _matcher(pattern: str) -> Callable[[str], bool]:
    match = re.compile(pattern).match
    return lambda value: match(value) is not None


# Every format check, one function each, handed to both validators. A format jsonschema-rs knows
# but these do not check is switched off there (:data:`_UNCHECKED`), so the two never disagree.
CHECKS: dict[str, Callable[[str], bool]] = {
    **{name: _matcher(pattern) for name, pattern in FORMATS.items()},
    "date": _is_date,
    "ipv6": _is_ipv6,
    "regex": _is_regex,
}
_UNCHECKED = ("idn-email", "idn-hostname", "iri", "iri-reference", "json-pointer", "relative-json-pointer",
              "uri-reference", "uri-template", "duration")
_NATIVE_FORMATS: dict[str, Callable[[str], bool]] = {**CHECKS, **dict.fromkeys(_UNCHECKED, lambda value: True)}

# The same patterns in the native engine's spelling: Rust's ``$`` is already the end of the text
# (there is no ``\\Z``). A property test checks that both validators agree on any string.
_NATIVE_PATTERNS: dict[str, str] = {name: pattern.replace(r"\Z", "$") for name, pattern in FORMATS.items()}

_FORMAT_CHECKER = FormatChecker(formats=())
for _name, _check in CHECKS.items():
    _FORMAT_CHECKER.checks(_name)(lambda value, _check=_check: not isinstance(value, str) or _check(value))


FieldStyle = Callable[[Sequence[str | int]], str | None]


def _segment(part: str | int) -> str:
    """A path segment as it reads in a field name; a key longer than any field a provider declares is
    cut, so an error body never repeats a megabyte-long key a hundred times (security issue, item 2)."""
    text = str(part)
    return text if len(text) <= 200 else text[:197] + "..."


def dot_path(parts: Sequence[str | int]) -> str | None:
    """``personalizations.0.to.0.email`` (SendGrid's style)."""
    return ".".join(_segment(p) for p in parts) or None


def bracket_path(parts: Sequence[str | int]) -> str | None:
    """``to[0]`` / ``template.parameters.name`` (Sent's style)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{_segment(part)}" if out else _segment(part))
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


# Bounds of validation (proxy/policy/findings.py; security issue item 2). A step of the all-errors
# pass is a keyword evaluated or an element walked (~3 µs on the 2-core development machine); a step
# of the rules, a node visited (~0.4 µs): each pass holds the event loop ~25 ms at most, whatever the
# body. A SendGrid body of 1,000 personalizations (its bound) takes the rules ~19,000 steps.
MAX_FINDINGS = 100
MAX_STEPS = 8_000
MAX_RULE_STEPS = 40_000
INVALID = "The request body is invalid."
TOO_LARGE = "The request body is too large to be checked in test mode."
_AFTER_SCHEMA = (1,)  # the rules' findings are listed after the schema's, in the order found


@dataclass(frozen=True, slots=True)
class BodyValidator:
    """``check(body)`` returns no findings for a valid body, else its findings: every one for an
    ordinary body; for others the first ``max_findings``, or those found within the step budgets,
    then a note that the list was cut (:data:`proxy.policy.findings.TRUNCATED`)."""

    fast: jsonschema_rs.Validator | None
    slow: SchemaValidator | None  # proxy.policy.all_errors.AllErrorsValidator
    rules: tuple[RuleCheck, ...]
    field_style: FieldStyle
    max_findings: int = MAX_FINDINGS
    max_steps: int = MAX_STEPS
    max_rule_steps: int = MAX_RULE_STEPS

    def check(self, body: Any) -> list[FieldError]:
        refused = self.fast is not None and not self.fast.is_valid(body)
        if not refused and not self.rules:
            return []  # the common case, at the cost it had before
        found = Findings(self.max_findings)
        if refused:
            self._explain(body, found)
        if self.rules and not found.truncated:
            self._apply_rules(body, found)
        return found.listing()

    def _explain(self, body: Any, found: Findings) -> None:
        """The all-errors pass: stops at the findings limit or the step budget, whichever comes first."""
        assert self.slow is not None
        try:
            with metered(self.max_steps):
                for error in self.slow.iter_errors(body):
                    key = (0, _path_order(error.absolute_path))
                    if not all(found.add(finding, key) for finding in self._describe(error)):
                        break
        except OutOfSteps:
            found.truncated = True
        if not found:
            # Out of steps before the first finding, or the validators disagree. Not the fast
            # validator's own error: jsonschema-rs copies the failing value into it (+74 MB for a 2 MB body).
            found.add(FieldError(None, INVALID))

    def _apply_rules(self, body: Any, found: Findings) -> None:
        try:
            with metered(self.max_rule_steps):
                for rule in self.rules:
                    if not all(found.add(finding, _AFTER_SCHEMA) for finding in rule(body)):
                        return
        except OutOfSteps:
            if found:
                found.truncated = True
            else:  # the rules could not finish: the body is not known to be valid
                found.add(FieldError(None, TOO_LARGE))

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
                help_text = own.get("x-help") or schema.get("x-helps", {}).get("required") or schema.get("x-help")
                yield self._finding(message, field, help_text, error)
            return
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(schema.get("properties", {}))
            patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
            for name in error.instance:
                spend(1)
                if name not in known and not any(p.search(name) for p in patterns):
                    message = schema.get("x-messages", {}).get("additionalProperties") or _default_message(error)
                    yield self._finding(message, self.field_style([*path, name]), schema.get("x-help"), error)
            return
        message = (schema.get("x-messages", {}).get(str(error.validator)) or schema.get("x-message")
                   or _default_message(error))
        field = schema.get("x-fields", {}).get(str(error.validator)) or schema.get("x-field") or self.field_style(path)
        help_text = schema.get("x-helps", {}).get(str(error.validator)) or schema.get("x-help")
        yield self._finding(message, field, help_text, error)

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
        slow = AllErrorsValidator(full, format_checker=_FORMAT_CHECKER)
        native, formats = _native_schema(full)
        fast = jsonschema_rs.Draft7Validator(native, formats=formats, validate_formats=True, offline=True)
    # Not jsonschema's RefResolutionError: it is deprecated (merely naming it warns), and a bad $ref
    # already fails in jsonschema-rs at compile time.
    except SchemaError as exc:
        raise SchemaCompileError(exc.message) from exc
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        message = str(getattr(exc, "message", exc)).split("\n", 1)[0]
        if isinstance(exc, jsonschema_rs.ReferencingError) or "does not exist" in message:
            message = f"Unresolvable ref: {message}"
        raise SchemaCompileError(message) from exc
    return BodyValidator(fast, slow, rules, field_style)


# Draft 7 keywords whose value is a subschema, a list of them, or a map of names to them.
_SUBSCHEMA = frozenset({"items", "additionalItems", "additionalProperties", "contains", "propertyNames", "if",
                        "then", "else", "not", "allOf", "anyOf", "oneOf"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies"})


def _native_schema(schema: Any) -> tuple[Any, dict[str, Callable[[str], bool]]]:
    """The schema for jsonschema-rs, with each ``pattern`` turned into a custom format that runs
    Python's ``re`` (jsonschema-rs's Rust regexes differ: no ``\\Z``, other classes), so a pattern
    means exactly what it means to the all-errors validator."""
    formats = dict(_NATIVE_FORMATS)

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SUBSCHEMA:
                out[key] = rewrite(value)
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: rewrite(sub) for name, sub in value.items()}
            elif key != "pattern" or not isinstance(value, str):
                out[key] = value
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            name = f"x-pattern-{len(formats)}"
            formats[name] = _searcher(pattern)
            out["allOf"] = [*out.get("allOf", []), {"format": name}]
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _NATIVE_PATTERNS:
            # A call back into Python per checked string costs more than the whole native check.
            del out["format"]
            out["pattern"] = _NATIVE_PATTERNS[fmt]
        return out

    return rewrite(schema), formats
