"""Every key on a test flag's path is given once and spelled exactly, or the body cannot be told apart
from a test request.

Parsers disagree on a key given twice (orjson and Python keep the last copy, others the first, some
merge two objects), so ``{"mail_settings": {"sandbox_mode": {"enable": true}}, "mail_settings": {}}`` is
live to the gateway and a sandbox send to a parser that keeps the first. A provider on Go's or ASP.NET's
JSON defaults reads keys case-insensitively, so ``{"Test_Mode": true}`` may be the flag to it and is
nothing to the gateway. Either is refused (400 ``ambiguous_test_mode``), on any key of a trigger's path:
the flag's own and its parents'. Spellings are compared as :func:`proxy.policy.flagnames.fold` compares
them (issue #10, items 4 and 7).

Clean bodies pay one byte translation and one search per key on the path (:func:`may_be_ambiguous`);
only a body that search cannot clear is parsed again, keeping every key as written.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from proxy.errors import bad_request
from proxy.policy.flagnames import FOLD_BYTES, fold
from proxy.policy.model import FlagKey, FlagPaths


class Finding(NamedTuple):
    field: str  # the dotted path of the key, as written
    message: str


def check(raw: bytes, paths: FlagPaths) -> Finding | None:
    """The first key on a trigger's path that is given twice or spelled other than exactly, or None."""
    if not paths.keys or not may_be_ambiguous(raw, paths):
        return None
    return ambiguous_key(raw, paths)


def may_be_ambiguous(raw: bytes, paths: FlagPaths) -> bool:
    """Cheap byte test, true whenever :func:`ambiguous_key` could find something: a key spelled with an
    escape or a non-ASCII look-alike letter, or a key's folded spelling found twice or not exactly."""
    # ``92 in raw`` (a backslash; memchr) first: ``b"\\u" in raw`` alone is 7x slower on a clean body.
    if 92 in raw and b"\\u" in raw:
        return True
    if paths.look_alikes and not raw.isascii() and any(map(raw.__contains__, paths.look_alikes)):
        return True
    return _unclear(raw, raw.translate(FOLD_BYTES), paths.keys, 0)


def _unclear(raw: bytes, folded: bytes, keys: tuple[FlagKey, ...], start: int) -> bool:
    """Is any of ``keys`` spelled (folded) twice or not exactly in ``raw[start:]``? A key's object starts
    after its one spelling, so the keys below it are looked for only from there."""
    for key in keys:
        at = folded.find(key.token, start)
        if at < 0:
            continue  # no spelling of it: nothing below it can be on the path either
        if folded.find(key.token, at + 1) >= 0 or not raw.startswith(key.exact, at):
            return True
        if key.below and _unclear(raw, folded, key.below, at + len(key.token)):
            return True
    return False


class _Spelled(dict[str, Any]):
    """A parsed object holding keys that fold to a flag key's name, as written and in order."""

    __slots__ = ("spellings",)
    spellings: tuple[str, ...]


def ambiguous_key(raw: bytes, paths: FlagPaths) -> Finding | None:
    """Parse ``raw`` again keeping every key as written (orjson keeps only the last copy), then walk the
    triggers' paths. A body orjson accepted and this parser does not is refused: it cannot be checked."""
    lengths, names = paths.lengths, paths.folded

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        spellings = tuple(k for k, _ in pairs if len(k) in lengths and fold(k) in names)
        if not spellings:
            return dict(pairs)
        obj = _Spelled(pairs)
        obj.spellings = spellings
        return obj

    try:
        body = json.loads(raw, object_pairs_hook=hook)
    except (ValueError, RecursionError) as exc:
        raise bad_request("invalid_json", "The body could not be checked for test flags; nothing was sent.") from exc
    return _walk(body, paths.keys, ())


def _walk(node: Any, keys: tuple[FlagKey, ...], where: tuple[str, ...]) -> Finding | None:
    spellings = node.spellings if isinstance(node, _Spelled) else ()
    for key in keys:
        same = [s for s in spellings if fold(s) == key.folded]
        odd = next((s for s in same if s != key.name), None)
        if odd is not None:
            return Finding(".".join((*where, odd)),
                           f"The key '{odd}' may be read as '{key.name}' (some providers ignore case), so the request "
                           f"cannot be told apart from a test; spell it '{key.name}'. Nothing was sent.")
        if len(same) > 1:
            return Finding(".".join((*where, key.name)), f"The key '{key.name}' appears more than once in one object.")
        child = node.get(key.name)
        if key.below and isinstance(child, dict) and (found := _walk(child, key.below, (*where, key.name))):
            return found
    return None
