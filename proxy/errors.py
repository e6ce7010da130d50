"""The gateway's error type: raised by any stage, rendered in one place (:mod:`proxy.render`).

One class on purpose: callers tell errors apart by ``reason`` (a bounded metrics label) and ``status``,
never by type. ``outcome`` is set on gateway-made 5xx to say whether the provider may have acted
(``not_sent``: it never received the request; ``unknown``: it may have).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["not_sent", "unknown"]

# The one catalogue of engine error codes and the statuses each is answered with. Provider routes word
# them in the policy's dialect (``dialect.codes`` / ``dialect.messages`` may reword any of ``DIALECT``);
# the rest are only ever problem details (before routing, or on the gateway's own control API).
# tests/test_errors.py checks every raise site and policies/README.md against it.
DIALECT: dict[str, tuple[int, ...]] = {
    "bad_request": (400,),
    "invalid_json": (400,),
    "validation_error": (400,),
    "ambiguous_test_mode": (400,),
    "invalid_test_flag": (400,),
    "ambiguous_credentials": (400,),
    "unauthorized": (401,),
    "forbidden": (403,),
    "not_found": (404,),
    "test_mode_unsupported": (404,),
    "method_not_allowed": (405,),
    "request_timeout": (408,),
    "payload_too_large": (413,),
    "unsupported_media_type": (415,),
    "rate_limited": (429,),
    "headers_too_large": (431,),
    "idempotency_key_invalid": (400,),
    "idempotency_in_flight": (409,),
    "idempotency_mismatch": (400, 409, 422),  # the policy's idempotency.mismatch_status
    "idempotency_interrupted": (502,),
    "internal_error": (500,),
    "upstream_unreachable": (502, 503),
    "upstream_bad_response": (502,),
    "key_verification_unavailable": (503,),
    "overloaded": (503,),
    "upstream_timeout": (504,),
}
PROBLEM_ONLY: dict[str, tuple[int, ...]] = {
    "uri_too_long": (414,),  # the HTTP layer, before routing (proxy/server.py)
    "not_implemented": (501,),  # a transfer coding other than chunked (proxy/server.py)
    "conflict": (409,),  # the control API (a forced event on a message that moved on)
}
CODES: dict[str, tuple[int, ...]] = {**DIALECT, **PROBLEM_ONLY}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation finding: a field path (or None), a message and an optional help link."""

    field: str | None
    message: str
    help: str | None = None


class GatewayError(Exception):
    """A request ends here with ``status``; ``code`` selects the policy's wording and error code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        reason: str | None = None,
        items: Sequence[FieldError] = (),
        outcome: Outcome | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason or code
        self.items = tuple(items)
        self.outcome = outcome
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.code!r}, {self.message!r})"


def bad_request(code: str, message: str, *, field: str | None = None, reason: str | None = None) -> GatewayError:
    """A 400 with one field finding; the common case for body and trigger errors."""
    return GatewayError(400, code, message, reason=reason, items=(FieldError(field, message),))
