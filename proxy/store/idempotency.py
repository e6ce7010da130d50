"""Idempotency records: what the store keeps for ``Idempotency-Key`` (issue 13), as domain types and the
interface every implementation answers (:class:`IdempotencyRecords`; SQLite in
:mod:`proxy.store.idempotency_sqlite`, Redis later). One contract suite (tests/store/test_idempotency.py)
runs against each implementation.

A record belongs to a :class:`Scope` (caller, mode, key) and a request fingerprint. It is claimed before
the request runs (``in_flight``) and completed with the :class:`Answer` the client got (status, selected
headers, the body's exact bytes), kept ``retention`` seconds after completion; an expired record counts
as absent at once. A claim left by a process that died is reported as ``orphaned`` to the one that takes
it over; the caller decides the answer (:mod:`proxy.stages.idempotency`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, Protocol

PURGE = "idempotency.purge"  # the scheduler step that deletes expired records
PURGE_BATCH = 1000

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose key it is: ``principal`` (policy and API key id), ``mode`` (test|live) and the key itself."""

    principal: str
    mode: Literal["test", "live"]
    key: str

    def digest(self) -> bytes:
        return hashlib.sha256(f"{self.principal}\x00{self.mode}\x00{self.key}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A completed request's answer, as replayed: status, selected headers, the body's exact bytes."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`claim` found. ``state``:

    * ``claimed`` — the caller now owns the key and must :meth:`complete` or :meth:`release` it;
      ``orphaned`` says the claim was taken over from a process that died while holding it;
    * ``replay`` — a completed answer for the same request (``answer``);
    * ``in_flight`` — the same request is being processed by this process right now;
    * ``mismatch`` — the key was used for another request (another fingerprint).
    """

    state: Literal["claimed", "replay", "in_flight", "mismatch"]
    scope: Scope
    digest: bytes
    fingerprint: bytes
    answer: Answer | None = None
    orphaned: bool = False


class IdempotencyRecords(Protocol):
    """The domain interface every store implements (SQLite now, Redis later); one contract test suite
    (tests/store/test_idempotency.py) runs against each implementation."""

    boot: str
    retention: float

    def claim(self, scope: Scope, fingerprint: bytes) -> Claim: ...

    async def complete(self, claim: Claim, answer: Answer) -> bool: ...

    def complete_now(self, claim: Claim, answer: Answer) -> bool: ...

    def release(self, claim: Claim) -> None: ...

    def purge(self, limit: int = PURGE_BATCH) -> int: ...


class RecentAnswers:
    """The answers replayed lately, by scope digest, up to ``max_bytes``: a retry storm on one
    key is answered without a statement. A copy of the store, never the only one (DESIGN.md: in-memory
    caches are fine); each entry keeps its record's expiry, so an expired key is still processed anew."""

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[bytes, tuple[bytes, Answer, float, int]] = OrderedDict()

    def get(self, digest: bytes, now: float) -> tuple[bytes, Answer] | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[2] <= now:
            self._drop(digest)
            return None
        return entry[0], entry[1]

    def put(self, digest: bytes, fingerprint: bytes, answer: Answer, expires_at: float) -> None:
        cost = len(answer.body) + sum(len(k) + len(v) + 120 for k, v in answer.headers) + 400  # with the objects
        if cost > self.max_bytes // 8:
            return  # one large answer would push out many small ones
        self._drop(digest)
        # A copy of the exact size: a serializer's output may sit in a buffer several times larger
        # (orjson's: 4 KiB for a 400-byte answer), which the cache would otherwise keep alive.
        kept = Answer(answer.status, answer.headers, bytes(memoryview(answer.body)))
        self._entries[digest] = (fingerprint, kept, expires_at, cost)
        self.size += cost
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None:
            self.size -= entry[3]
