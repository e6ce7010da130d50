"""What a policy's keys look like, and which policy a request's key belongs to.

A key's shape is policy data (``keys.shapes`` and ``keys.issued_prefix``, compiled once): Sent keys
start ``sk_live_``/``sk_test_``, SendGrid keys are ``SG.<22>.<43>``, Blueticked keys ``blu_live_``/
``blu_test_``. The shape decides two things before any provider is asked:

* *auth*: a key that does not have the policy's shape is 401 at once. It is never shown to the
  provider, not even to verify it (an unknown key used to cost one provider call each: an
  anonymous oracle for stolen keys, security issue item 3).
* *route*: where several policies are mounted at one prefix, the policy whose key header carries a
  key of its own shape serves the request (:mod:`proxy.policy.mounts`); a Sent key in
  ``Authorization`` is no SendGrid key (item 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from proxy.policy.model import KeySpec

ShapeKind = Literal["issued", "provider"]
_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class KeyShape:
    """Prefixes of gateway-issued keys, prefixes of the provider's own keys, and an optional
    whole-key pattern that the provider's keys (not issued ones: the registry knows those) must match."""

    issued: tuple[str, ...]
    live: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    provider: tuple[str, ...] = field(init=False)  # live + test
    # Verdicts by key: the same few keys arrive on every request, and route and auth both ask. Bounded:
    # cleared when full, so a flood of distinct keys costs only the check itself.
    _memo: dict[str, ShapeKind | None] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider", self.live + self.test)
        object.__setattr__(self, "_memo", {})

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Every prefix a key of this policy starts with (issued ones included)."""
        return self.issued + self.live + self.test

    def kind(self, key: str) -> ShapeKind | None:
        """``issued`` (a gateway key prefix), ``provider`` (the provider's own shape), or None."""
        memo = self._memo
        if key in memo:
            return memo[key]
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        found = memo[key] = self._kind(key)
        return found

    def _kind(self, key: str) -> ShapeKind | None:
        if key.startswith(self.issued):
            return "issued"
        if key.startswith(self.provider) and (self.pattern is None or self.pattern.fullmatch(key)):
            return "provider"
        return None

    def describe(self) -> str:
        """For error messages: ``sk_live_…, sk_test_…``."""
        return ", ".join(f"{prefix}…" for prefix in self.provider or self.issued)


def read_key(spec: KeySpec, value: str) -> str | None:
    """The key in a value of the policy's key header (``Bearer <key>`` for the bearer scheme), or None
    when the value cannot hold one. The same reading *auth* does, without its error wording."""
    if spec.scheme == "bearer":
        scheme, _, value = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
    value = value.strip()
    return value or None


def claims(spec: KeySpec, headers: Mapping[str, str]) -> bool:
    """Does the policy's own key header carry a key of the policy's shape?"""
    value = headers.get(spec.header)
    if value is None:
        return False
    key = read_key(spec, value) if spec.scheme == "bearer" else value.strip()  # raw: inlined, it is every request
    if not key:
        return False
    return spec.shape.kind(key) is not None
