"""A policy's ``idempotency`` section: its schema fragment, its compiled form, its compile function.

The capability compiles its own section (DESIGN.md, "Each capability compiles its own policy section");
the loader only calls :func:`compile_idempotency`. A policy without the section gets the defaults:
``Idempotency-Key``, any printable ASCII key of 1-255 characters, the key forwarded on live requests,
422 for a key reused with another request (draft-ietf-httpapi-idempotency-key-header §2.7).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_STR_LIST = {"type": "array", "items": {"type": "string"}}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "header": {"type": "string", "pattern": r"^[A-Za-z0-9-]+$"},
        "key_pattern": {"type": "string", "minLength": 1},
        "key_description": {"type": "string"},
        "forward": {"type": "boolean"},
        "mismatch_status": {"enum": [400, 409, 422]},
        "in_flight_retry_after": {"type": "integer", "minimum": 0, "maximum": 60},
        "replay_headers": _STR_LIST,
    },
}

# RFC 9110 token-ish: printable ASCII without spaces (reliability.md: "malformed key: empty, > 255 chars,
# non-printable"); a policy narrows it to the provider's documented alphabet with ``key_pattern``.
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,255}")
MAX_KEY_LENGTH = 255

# Headers every replay carries when the first answer had them: what a client reads back.
_ALWAYS_REPLAYED = ("content-type", "x-request-id", "x-gateway-outcome", "x-should-retry", "retry-after")


@dataclass(frozen=True, slots=True)
class IdempotencySpec:
    name: str  # as the policy writes it, for messages
    header: str  # lower-case, as looked up in ``ctx.headers``
    raw_header: bytes  # lower-case bytes, as found in the ASGI scope
    key_pattern: re.Pattern[str] | None  # the provider's alphabet, on top of printable ASCII
    key_rule: str  # the alphabet in words, for the 400
    forward: bool  # live requests: the provider understands the header (True) or only the gateway does
    mismatch_status: int
    retry_after: int  # seconds, on the 409 for a duplicate still in flight
    replay_headers: frozenset[bytes]

    def key_problem(self, key: str) -> str | None:
        """Why ``key`` is malformed, or None."""
        if not key:
            return "is empty"
        if len(key) > MAX_KEY_LENGTH:
            return f"is longer than {MAX_KEY_LENGTH} characters"
        if _PRINTABLE.fullmatch(key) is None or (self.key_pattern is not None
                                                 and self.key_pattern.fullmatch(key) is None):
            return f"must be {self.key_rule}"
        return None


def compile_idempotency(
    node: dict[str, Any] | None, test_header_names: Iterable[bytes], fail: Callable[[str, str], Exception]
) -> IdempotencySpec:
    """The compiled section (``node`` already passed :data:`SCHEMA`); ``fail(where, message)`` builds the
    loader's error for a key path under ``idempotency``."""
    node = node or {}
    pattern = None
    if "key_pattern" in node:
        try:
            pattern = re.compile(node["key_pattern"])
        except re.error as exc:
            raise fail("idempotency.key_pattern", f"not a regular expression: {exc}") from exc
    rule = node.get("key_description") or (
        f"1-{MAX_KEY_LENGTH} characters matching {node['key_pattern']}" if pattern is not None
        else f"1-{MAX_KEY_LENGTH} printable ASCII characters without spaces")
    name = node.get("header", "Idempotency-Key")
    header = name.lower()
    replayed = {*_ALWAYS_REPLAYED, *(h.lower() for h in node.get("replay_headers", ()))}
    return IdempotencySpec(
        name=name,
        header=header,
        raw_header=header.encode("latin-1"),
        key_pattern=pattern,
        key_rule=rule,
        forward=node.get("forward", True),
        mismatch_status=node.get("mismatch_status", 422),
        retry_after=node.get("in_flight_retry_after", 1),
        replay_headers=frozenset({h.encode("latin-1") for h in replayed} | set(test_header_names)),
    )


DEFAULT = compile_idempotency(None, (), lambda where, message: ValueError(f"{where}: {message}"))
