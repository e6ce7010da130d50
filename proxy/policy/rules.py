"""Validation rules JSON Schema cannot express, named in a route's ``rules:`` list.

A rule is general (it knows nothing of any one provider): the policy names it and gives it
parameters and wording. Each factory takes the rule's options (already checked at load) and
returns a check of the parsed body that yields its findings one by one: the validator stops asking
once it has as many as it lists (proxy/policy/validation.py, ``MAX_FINDINGS``), and every element a
rule visits is one step of its budget (:func:`proxy.policy.findings.spend`; security issue item 2).

Paths are dotted, ``*`` standing for every element of an array (or value of an object):
``personalizations.*.to.*.email``. Every rule takes ``message`` (required), ``field`` (default: the
offending path) and ``help``; ``field`` and ``message`` may use the placeholders the rule documents
(``{path}`` is always the offending path). Values of the wrong type are skipped: the schema reports them.

=====================  =======================================================================
rule                   finds
=====================  =======================================================================
``required_unless``    ``path`` is absent and no path in ``unless`` is present
``unique_across``      a value repeated across ``paths`` (within each ``scope`` element)
``max_total``          more than ``max`` elements matched by ``paths`` together
``ordered_first``      items of array ``path`` whose ``key`` is listed in ``order`` not leading, in order
``max_future_seconds`` a Unix timestamp more than ``seconds`` ahead of now
``base64``             a string that is not valid base64
``forbidden_keys``     an object with one of ``keys`` as a key
=====================  =======================================================================

To add a rule: write ``def _my_rule(options: RuleOptions) -> RuleCheck`` and register it in
``RULES``; raise :class:`RuleConfigError` from the factory for bad options so policy load fails
with the key path.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

import orjson

from proxy.errors import FieldError
from proxy.masking import mask_echo
from proxy.policy.findings import spend

RuleCheck = Callable[[Any], Iterable[FieldError]]
RuleOptions = dict[str, Any]
RuleFactory = Callable[[RuleOptions], RuleCheck]
Parts = tuple[str | int, ...]

_COMMON = {"message": str, "field": str, "help": str}
_SEGMENT = re.compile(r"^(\*|[A-Za-z0-9_$-]+)$")
_WHITESPACE = re.compile(r"\s+")


class RuleConfigError(ValueError):
    """A rule's options are wrong; the loader prefixes the file and key path."""


# ---------------------------------------------------------------------------------------- options


def _check(options: RuleOptions, required: Mapping[str, Any], optional: Mapping[str, Any]) -> None:
    """Every option known, present when required, of its type (``bool`` is not an ``int``)."""
    known = {**_COMMON, **required, **optional}
    for name in options:
        if name not in known:
            raise RuleConfigError(f"{name}: unknown option (known: {', '.join(sorted(known))})")
    for name in ["message", *required]:
        if name not in options:
            raise RuleConfigError(f"{name}: required")
    for name, value in options.items():
        expected = known[name]
        if isinstance(value, bool) and expected is not bool:
            raise RuleConfigError(f"{name}: expected {expected.__name__}, got a boolean")
        if not isinstance(value, expected):
            raise RuleConfigError(f"{name}: expected {expected.__name__}, got {type(value).__name__}")
        if expected is str and not value.strip():
            raise RuleConfigError(f"{name}: must not be empty")


def _path(options: RuleOptions, name: str) -> tuple[str, ...]:
    text = options[name]
    parts = tuple(text.split("."))
    if not all(_SEGMENT.match(part) for part in parts):
        raise RuleConfigError(f"{name}: {text!r} is not a dotted path (segments: names, indices or *)")
    return parts


def _paths(options: RuleOptions, name: str) -> tuple[tuple[str, ...], ...]:
    values = options[name]
    if not values or not all(isinstance(v, str) for v in values):
        raise RuleConfigError(f"{name}: expected a non-empty list of dotted paths")
    return tuple(_path({name: v}, name) for v in values)


def _positive_int(options: RuleOptions, name: str) -> int:
    value: int = options[name]
    if value < 1:
        raise RuleConfigError(f"{name}: must be at least 1")
    return value


# ---------------------------------------------------------------------------------------- paths


def select(value: Any, pattern: tuple[str, ...], base: Parts = ()) -> Iterator[tuple[Parts, Any]]:
    """Every ``(concrete path, value)`` the pattern reaches; missing keys and wrong types reach nothing.

    Lazy (a rule that needs only the first few stops early); each node visited is one step."""
    spend(1)
    if not pattern:
        yield base, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from select(item, rest, (*base, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from select(item, rest, (*base, key))
    elif isinstance(value, dict):
        if head in value:
            yield from select(value[head], rest, (*base, head))
    elif isinstance(value, list) and head.isdigit() and int(head) < len(value):
        yield from select(value[int(head)], rest, (*base, int(head)))


def present(value: Any, pattern: tuple[str, ...]) -> bool:
    """The path exists (even as ``null``); a ``*`` needs a non-empty array whose every element has the rest."""
    spend(1)
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return isinstance(value, list) and bool(value) and all(present(item, rest) for item in value)
    if isinstance(value, dict):
        return head in value and present(value[head], rest)
    if isinstance(value, list) and head.isdigit():
        return int(head) < len(value) and present(value[int(head)], rest)
    return False


def dotted(parts: Parts) -> str:
    return ".".join(str(p) for p in parts)


def value_text(value: Any) -> str:
    """A value as it reads in a message: strings bare, the rest as JSON, long ones cut to 200 characters,
    emails and phone numbers masked (an error body never quotes them whole: issue 15).

    Only the start of a large value is ever rendered (a finding about a 1 MB array costs 200 characters)."""
    text = value[:201] if isinstance(value, str) else _json_head(value, 201)
    return mask_echo(text if len(text) <= 200 else text[:197] + "...")


def _json_head(value: Any, room: int) -> str:
    """``value`` as compact JSON (orjson's spelling): all of it, or a start at least ``room`` long."""
    if isinstance(value, list | dict):
        pairs = enumerate(value) if isinstance(value, list) else value.items()
        parts, used = ["[" if isinstance(value, list) else "{"], 1
        for index, (key, item) in enumerate(pairs):
            if used > room:
                return "".join(parts)
            part = ("," if index else "") + ("" if isinstance(value, list) else _json_head(key, room - used) + ":")
            part += _json_head(item, room - used - len(part))
            parts.append(part)
            used += len(part)
        return "".join(parts) + ("]" if isinstance(value, list) else "}")
    if isinstance(value, str):
        value = value[:max(room, 0) + 1]  # a cut string still renders longer than room
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)[:max(room, 0) + 1]


def json_type(value: Any) -> str:
    """The JSON Schema type name of a parsed value (``bool`` before ``int``: ``True`` is an int in Python)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


class _Wording:
    """``message``/``field``/``help`` of one rule, with ``{placeholder}`` substitution (never ``str.format``:
    provider messages hold literal braces such as ``{"email": ...}``)."""

    def __init__(self, options: RuleOptions, default_field: str = "{path}") -> None:
        self.message: str = options["message"]
        self.field: str = options.get("field", default_field)
        self.help: str | None = options.get("help")

    def finding(self, **values: Any) -> FieldError:
        message, field = self.message, self.field
        # the offending value last, so text it carries is never itself substituted
        for name in sorted(values, key=lambda n: n == "value"):
            token, text = "{" + name + "}", value_text(values[name])
            message, field = message.replace(token, text), field.replace(token, text)
        return FieldError(field or None, message, self.help)


# ---------------------------------------------------------------------------------------- rules


def _required_unless(options: RuleOptions) -> RuleCheck:
    """``path`` is required (in each object its parent reaches) unless any ``unless`` path is present.

    ``{ subject: required unless template_id, or every personalizations.*.subject }``. Placeholders: ``{path}``.
    """
    _check(options, {"path": str}, {"unless": list})
    path = _path(options, "path")
    if path[-1] == "*":
        raise RuleConfigError("path: must end with a key, not *")
    unless = _paths(options, "unless") if "unless" in options else ()
    wording = _Wording(options)
    parent, key = path[:-1], path[-1]

    def check(body: Any) -> Iterator[FieldError]:
        if any(present(body, other) for other in unless):
            return
        yield from (wording.finding(path=dotted((*where, key)))
                    for where, obj in select(body, parent) if isinstance(obj, dict) and key not in obj)

    return check


def _unique_across(options: RuleOptions) -> RuleCheck:
    """No value twice among everything ``paths`` reach, checked separately within each ``scope`` element.

    Placeholders: ``{path}`` (the repeat), ``{value}``, ``{array}`` (the list holding the repeat),
    ``{scope}`` (the scope element). ``case_insensitive`` compares strings case-folded; ``first_only``
    reports only the first repeat of each scope element. Only strings and numbers are compared.
    """
    _check(options, {"paths": list}, {"scope": str, "case_insensitive": bool, "first_only": bool})
    paths = _paths(options, "paths")
    scope = _path(options, "scope") if "scope" in options else ()
    fold = bool(options.get("case_insensitive", False))
    first_only = bool(options.get("first_only", False))
    wording = _Wording(options)

    def repeats(element: Any) -> Iterator[tuple[Parts, Any]]:
        seen: set[Any] = set()
        for pattern in paths:
            for parts, value in select(element, pattern):
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    continue
                key = value.casefold() if fold and isinstance(value, str) else value
                if key in seen:
                    yield parts, value
                seen.add(key)

    def check(body: Any) -> Iterator[FieldError]:
        for scope_parts, element in select(body, scope):
            for parts, value in repeats(element):
                full = (*scope_parts, *parts)
                indices = [i for i, part in enumerate(full) if isinstance(part, int)]
                array = full[:indices[-1]] if indices else full[:-1]
                yield wording.finding(path=dotted(full), value=value, array=dotted(array), scope=dotted(scope_parts))
                if first_only:
                    break

    return check


def _max_total(options: RuleOptions) -> RuleCheck:
    """At most ``max`` elements reached by all ``paths`` together (recipients across to, cc and bcc).

    Placeholders: ``{count}``, ``{max}``; ``field`` defaults to the first path's first segment. Counting
    stops at ``max + 1`` unless the wording shows ``{count}``.
    """
    _check(options, {"paths": list, "max": int}, {})
    paths = _paths(options, "paths")
    limit = _positive_int(options, "max")
    wording = _Wording(options, default_field=paths[0][0])
    stop = None if "{count}" in wording.message + wording.field else limit + 1

    def check(body: Any) -> Iterator[FieldError]:
        matches = (1 for pattern in paths for _ in select(body, pattern))
        count = sum(islice(matches, stop))
        if count > limit:
            yield wording.finding(count=count, max=limit)

    return check


def _ordered_first(options: RuleOptions) -> RuleCheck:
    """In array ``path``, items whose ``key`` is listed in ``order`` come first, in that order.

    ``order: [text/plain, text/html]``: text/plain (if any) first, then text/html, then anything else.
    One finding per array, at the first item out of place. Placeholders: ``{path}`` (that item),
    ``{index}``, ``{value}`` (its key's value).
    """
    _check(options, {"path": str, "order": list}, {"key": str})
    path = _path(options, "path")
    order = options["order"]
    if not order or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in order):
        raise RuleConfigError("order: expected a non-empty list of strings or numbers")
    if len(set(order)) != len(order):
        raise RuleConfigError("order: lists a value twice")
    rank = {value: i for i, value in enumerate(order)}
    key = options.get("key")
    wording = _Wording(options)

    def check(body: Any) -> Iterator[FieldError]:
        for parts, items in select(body, path):
            if not isinstance(items, list):
                continue
            highest = -1
            for index, item in enumerate(items):
                spend(1)
                value = item.get(key) if key is not None and isinstance(item, dict) else item
                hashable = isinstance(value, str | int) and not isinstance(value, bool)
                position = rank.get(value, len(order)) if hashable else len(order)
                if position < highest:
                    yield wording.finding(path=dotted((*parts, index)), index=index, value=value)
                    break
                highest = max(highest, position)

    return check


def _max_future_seconds(options: RuleOptions) -> RuleCheck:
    """A Unix timestamp (seconds) at ``paths`` may be at most ``seconds`` ahead of the gateway's clock.

    The past is fine (a provider sends at once). Placeholders: ``{path}``, ``{value}``, ``{seconds}``.
    """
    _check(options, {"paths": list, "seconds": int}, {})
    paths = _paths(options, "paths")
    limit = _positive_int(options, "seconds")
    wording = _Wording(options)

    def check(body: Any) -> Iterator[FieldError]:
        latest = time.time() + limit
        yield from (wording.finding(path=dotted(parts), value=value, seconds=limit)
                    for pattern in paths for parts, value in select(body, pattern)
                    if isinstance(value, int | float) and not isinstance(value, bool) and value > latest)

    return check


def _base64(options: RuleOptions) -> RuleCheck:
    """Strings at ``paths`` are standard base64 (RFC 4648 §4, padded). Empty strings are left to the schema.

    ``ignore_whitespace`` accepts MIME-style line breaks. Placeholders: ``{path}``.
    """
    _check(options, {"paths": list}, {"ignore_whitespace": bool})
    paths = _paths(options, "paths")
    strip = bool(options.get("ignore_whitespace", False))
    wording = _Wording(options)

    def valid(text: str) -> bool:
        if strip:  # one pass, one string: not split() into a list of every line
            text = _WHITESPACE.sub("", text)
        try:
            base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return False
        return True

    def check(body: Any) -> Iterator[FieldError]:
        yield from (wording.finding(path=dotted(parts))
                    for pattern in paths for parts, value in select(body, pattern)
                    if isinstance(value, str) and value and not valid(value))

    return check


def _forbidden_keys(options: RuleOptions) -> RuleCheck:
    """Objects at ``paths`` must not have any of ``keys`` (``case_insensitive``, as header names are).

    One finding per forbidden key. Placeholders: ``{path}`` (the object), ``{key}``.
    """
    _check(options, {"paths": list, "keys": list}, {"case_insensitive": bool})
    paths = _paths(options, "paths")
    keys = options["keys"]
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise RuleConfigError("keys: expected a non-empty list of strings")
    fold = bool(options.get("case_insensitive", False))
    forbidden = frozenset(k.casefold() for k in keys) if fold else frozenset(keys)
    wording = _Wording(options)

    def check(body: Any) -> Iterator[FieldError]:
        for pattern in paths:
            for parts, obj in select(body, pattern):
                if isinstance(obj, dict):
                    spend(len(obj))
                    yield from (wording.finding(path=dotted(parts), key=key)
                                for key in obj if (key.casefold() if fold else key) in forbidden)

    return check


RULES: dict[str, RuleFactory] = {
    "required_unless": _required_unless,
    "unique_across": _unique_across,
    "max_total": _max_total,
    "ordered_first": _ordered_first,
    "max_future_seconds": _max_future_seconds,
    "base64": _base64,
    "forbidden_keys": _forbidden_keys,
}


def compile_rule(options: RuleOptions) -> RuleCheck:
    name = options.get("rule")
    if not isinstance(name, str) or name not in RULES:
        known = ", ".join(sorted(RULES)) or "none"
        raise RuleConfigError(f"unknown rule {name!r} (known: {known})")
    return RULES[name]({k: v for k, v in options.items() if k != "rule"})
