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
