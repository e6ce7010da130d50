"""The template expression language: parsing, generators, filters, and the slow paths of lookups.

:mod:`proxy.policy.template` describes the language; this module parses one expression
(``body.to.0 | first``, ``token("msg_", 12)``) into an :class:`Expression` and holds the runtime
functions that generated render code calls (:mod:`proxy.policy.codegen`).
"""

from __future__ import annotations

import base64
import inspect
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Env = dict[str, Any]
Render = Callable[[Env], Any]


class TemplateError(ValueError):
    """A template that cannot compile; the message names the problem, the loader adds the key path."""


MISSING: Any = object()

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$")
_CALL = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)\)$")
_FILTER = re.compile(r"^([a-z_]+)(?:\((.*)\))?$")

# Random version 4 UUIDs (RFC 9562 section 5.4), made 256 at a time from one os.urandom() read: the
# syscall and the per-UUID slicing cost ~10x more than taking the next string from a list.
_BATCH = 256
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")  # 10xx: RFC 4122 variant, uniform


def _uuid_batch() -> list[str]:
    """``_BATCH`` UUID strings, laid out column by column with C-level strided copies."""
    digits = os.urandom(16 * _BATCH).hex().encode()
    out = bytearray(37 * _BATCH)  # 36 characters and a space per UUID
    column = 0
    for source in range(32):
        if column in (8, 13, 18, 23):
            out[column::37] = b"-" * _BATCH
            column += 1
        if source == 12:
            out[column::37] = b"4" * _BATCH  # the version nibble
        elif source == 16:
            out[column::37] = digits[source::32].translate(_VARIANT)
        else:
            out[column::37] = digits[source::32]
        column += 1
    out[36::37] = b" " * _BATCH
    return out.decode().split()


_uuids: Iterator[str] = iter(())


def _forget_uuids() -> None:
    global _uuids
    _uuids = iter(())


os.register_at_fork(after_in_child=_forget_uuids)  # a forked worker must never repeat its parent's UUIDs


def _uuid() -> str:
    """A random (version 4) UUID string. Thread-safe: a list iterator hands each string out once."""
    global _uuids
    try:
        return next(_uuids)
    except StopIteration:
        _uuids = iter(_uuid_batch())
        return next(_uuids)


def _token(prefix: str = "", nbytes: int = 12) -> str:
    return prefix + secrets.token_hex(nbytes)


def _whsec(nbytes: int = 24) -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of random bytes (shared/reference/reliability.md)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def _randint(low: int, high: int) -> int:
    return low + secrets.randbelow(high - low + 1)


GENERATORS: dict[str, Callable[..., Any]] = {
    "uuid": _uuid,
    "token": _token,
    "whsec": _whsec,
    "randint": _randint,
}


def f_default(value: Any, fallback: Any = None) -> Any:
    return fallback if value is MISSING or value is None else value


def _f_upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _f_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _f_length(value: Any) -> Any:
    return len(value) if isinstance(value, list | dict | str) else 0


def _f_str(value: Any) -> Any:
    return None if value is MISSING else text(value)


def f_first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else MISSING
    return value


def f_exclude(value: Any, *unwanted: Any) -> Any:
    return MISSING if value in unwanted else value


FILTERS: dict[str, Callable[..., Any]] = {
    "exclude": f_exclude,
    "default": f_default,
    "upper": _f_upper,
    "lower": _f_lower,
    "length": _f_length,
    "str": _f_str,
    "first": f_first,
}
# Filters whose result is never MISSING, and those that give MISSING only when given it.
NEVER_MISSING = frozenset({f_default, _f_length, _f_str})
KEEPS_MISSING = frozenset({_f_upper, _f_lower})


def text(value: Any) -> str:
    """A value as interpolated into a string: absent is empty, JSON spelling for the rest."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def lookup(value: Any, parts: tuple[str, ...]) -> Any:
    """``parts`` below ``value`` for an expression: MISSING when anything on the way is absent."""
    for part in parts:
        if isinstance(value, Mapping):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else MISSING
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def path_value(value: Any, parts: tuple[str, ...]) -> Any:
    """``parts`` below ``value`` for a whole ``{{ a.b.0 }}`` value: None when anything on the way is absent."""
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return None if value is MISSING else value


def each_values(values: Any) -> Any:
    """What ``$each`` iterates when its expression is not a list: nothing, or the one value."""
    if isinstance(values, list):
        return values
    return [] if values is MISSING or values is None else [values]


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: a generator call (``call``, ``args``) or a path (``root``, ``parts``), then filters."""

    call: Callable[..., Any] | None
    args: tuple[Any, ...]
    root: str
    parts: tuple[str, ...]
    filters: tuple[tuple[Callable[..., Any], tuple[Any, ...]], ...]


def _literal_args(arg_text: str) -> list[Any]:
    if not arg_text.strip():
        return []
    try:
        value = orjson.loads(f"[{arg_text}]".replace("'", '"'))
    except orjson.JSONDecodeError as exc:
        raise TemplateError(f"arguments {arg_text!r} are not JSON literals") from exc
    assert isinstance(value, list)
    return value


def parse_expression(source: str) -> Expression:
    """Parse ``path | filter(args) | ...`` or ``call(args) | ...``; a bad one raises :class:`TemplateError`."""
    head, *filter_texts = [part.strip() for part in source.split("|")]
    call: Callable[..., Any] | None = None
    args: list[Any] = []
    root = ""
    parts: tuple[str, ...] = ()
    if match := _CALL.match(head):
        name, arg_text = match.groups()
        if name not in GENERATORS:
            raise TemplateError(f"unknown function {name}() (known: {', '.join(sorted(GENERATORS))})")
        call, args = GENERATORS[name], _literal_args(arg_text)
        try:
            call(*args)
        except (TypeError, ValueError) as exc:  # randint(5, 1), token("x", -1): refused at load, not per request
            raise TemplateError(f"{name}() does not take {args!r}") from exc
    elif PATH.match(head):
        root, *rest = head.split(".")
        parts = tuple(rest)
    else:
        raise TemplateError(f"cannot parse expression {head!r}")
    filters = []
    for filter_text in filter_texts:
        match = _FILTER.match(filter_text)
        if not match or match.group(1) not in FILTERS:
            raise TemplateError(f"unknown filter {filter_text!r} (known: {', '.join(sorted(FILTERS))})")
        flt, flt_args = FILTERS[match.group(1)], _literal_args(match.group(2) or "")
        try:
            inspect.signature(flt).bind(MISSING, *flt_args)
        except TypeError as exc:  # `| upper(1)` would otherwise fail on every request
            raise TemplateError(f"filter {match.group(1)} does not take {flt_args!r}") from exc
        filters.append((flt, tuple(flt_args)))
    return Expression(call, tuple(args), root, parts, tuple(filters))
