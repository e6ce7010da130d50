"""Idempotency records: one per (caller, mode, ``Idempotency-Key``), claimed before a request runs and
completed with the answer it got (shared/reference/reliability.md, "Idempotency-Key"; issue 13).

A record is ``in_flight`` from the claim until the request's answer is known, then ``complete`` with
the status, the selected response headers and the body bytes, kept ``retention`` seconds after
completion. Every claim is stamped with the claiming process's ``boot`` id: one gateway process owns a
state directory (the Helm chart refuses replicas while the store is SQLite), so an ``in_flight`` record
stamped by another boot is a claim whose process died (``kill -9`` mid-forward) and nobody will ever
complete it. :meth:`SqliteIdempotencyRecords.claim` says so (``Claim.orphaned``), and the caller decides
the answer (:mod:`proxy.stages.idempotency`).

The scope is stored as a SHA-256 digest of (principal, mode, key): the index stays small whatever the
keys' length, and a client's keys (often order numbers) are not kept in clear. Durability: a completion
is committed before its answer leaves the gateway, in WAL with the database's ``synchronous`` level
(:mod:`proxy.store.database`: NORMAL survives ``kill -9``; FULL also a power loss).

Expired records are treated as absent at once (a key is processed anew as soon as its record expires);
a scheduler step (``idempotency.purge``) deletes them in the background and reschedules itself.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson
import structlog

from proxy.clock import Clock
from proxy.store.database import Database
from proxy.store.schedule import Due, Schedule

log = structlog.get_logger("proxy.store")

PURGE = "idempotency.purge"
_PURGE_BATCH = 1000

MIGRATIONS = [
    """
    CREATE TABLE idempotency (
        scope BLOB PRIMARY KEY,
        principal TEXT NOT NULL,
        mode TEXT NOT NULL,
        fingerprint BLOB NOT NULL,
        state TEXT NOT NULL,
        owner TEXT NOT NULL,
        status INTEGER,
        headers BLOB,
        body BLOB,
        created_at REAL NOT NULL,
        completed_at REAL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_by_expiry ON idempotency (expires_at)
    """,
]

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
    scope: bytes
    answer: Answer | None = None
    orphaned: bool = False


class IdempotencyRecords(Protocol):
    """The domain interface every store implements (SQLite now, Redis later); one contract test suite
    (tests/store/test_idempotency.py) runs against each implementation."""

    boot: str
    retention: float

    def claim(self, scope: Scope, fingerprint: bytes) -> Claim: ...

    def complete(self, claim: Claim, answer: Answer) -> bool: ...

    def release(self, claim: Claim) -> None: ...

    def purge(self, limit: int = _PURGE_BATCH) -> int: ...


class SqliteIdempotencyRecords:
    """:class:`IdempotencyRecords` in the gateway's SQLite file. Statements run on the event loop's
    thread with no ``await`` inside a method, so a claim's read and write see no other request between
    them; ``BEGIN IMMEDIATE`` (:meth:`Database.transaction`) keeps other processes out too."""

    def __init__(self, db: Database, clock: Clock, *, retention: float = 86_400.0, boot: str | None = None) -> None:
        if retention <= 0:
            raise ValueError("idempotency retention must be positive")
        self.db = db
        self.clock = clock
        self.retention = retention
        self.boot = boot or os.urandom(8).hex()  # this process's claims; any other boot's are orphans
        db.migrate("idempotency", MIGRATIONS)

    def claim(self, scope: Scope, fingerprint: bytes) -> Claim:
        digest = scope.digest()
        # The common repeat (a replay, a duplicate in flight) is a plain read: no write lock taken.
        found = self._judge(self._row(digest), digest, fingerprint)
        if found is not None:
            return found
        with self.db.transaction() as tx:  # BEGIN IMMEDIATE: read again under the write lock, then write
            row = self._row(digest)
            found = self._judge(row, digest, fingerprint)
            if found is not None:
                return found
            now = self.clock.time()
            if row is not None and row["expires_at"] > now:
                # In flight under a boot that is gone: nobody will complete it; the caller takes it over.
                tx.execute("UPDATE idempotency SET owner = ? WHERE scope = ?", (self.boot, digest))
                log.warning("idempotency_claim_orphaned", key_id=scope.principal, mode=scope.mode)
                return Claim("claimed", digest, orphaned=True)
            tx.execute(  # absent, or expired: processed anew
                "INSERT OR REPLACE INTO idempotency (scope, principal, mode, fingerprint, state, owner, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, 'in_flight', ?, ?, ?)",
                (digest, scope.principal, scope.mode, fingerprint, self.boot, now, now + self.retention),
            )
        return Claim("claimed", digest)

    def _row(self, digest: bytes) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.conn.execute(
            "SELECT fingerprint, state, owner, status, headers, body, expires_at FROM idempotency WHERE scope = ?",
            (digest,),
        ).fetchone()
        return row

    def _judge(self, row: sqlite3.Row | None, digest: bytes, fingerprint: bytes) -> Claim | None:
        """The answer a live record gives without a write, or None (absent, expired, or orphaned)."""
        if row is None or row["expires_at"] <= self.clock.time():
            return None
        if row["fingerprint"] != fingerprint:
            return Claim("mismatch", digest)
        if row["state"] == "complete":
            return Claim("replay", digest, _answer(row))
        if row["owner"] == self.boot:
            return Claim("in_flight", digest)
        return None

    def complete(self, claim: Claim, answer: Answer) -> bool:
        """Store ``answer`` for a claim this process holds; False if the claim is no longer held (purged
        after an in-flight time longer than the retention, or released)."""
        now = self.clock.time()
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "UPDATE idempotency SET state = 'complete', status = ?, headers = ?, body = ?, completed_at = ?, "
                "expires_at = ? WHERE scope = ? AND owner = ? AND state = 'in_flight'",
                (answer.status, orjson.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in answer.headers]),
                 answer.body, now, now + self.retention, claim.scope, self.boot),
            )
        return cursor.rowcount == 1

    def release(self, claim: Claim) -> None:
        """Forget a claim this process holds: the request did not run (or may run again), so a retry proceeds."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM idempotency WHERE scope = ? AND owner = ? AND state = 'in_flight'",
                       (claim.scope, self.boot))

    def purge(self, limit: int = _PURGE_BATCH) -> int:
        """Delete up to ``limit`` expired records (never a claim this process is still working on)."""
        with self.db.transaction() as tx:
            cursor = tx.execute(
                "DELETE FROM idempotency WHERE scope IN (SELECT scope FROM idempotency WHERE expires_at <= ? "
                "AND NOT (state = 'in_flight' AND owner = ?) LIMIT ?)", (self.clock.time(), self.boot, limit),
            )
        return cursor.rowcount

    def count(self) -> int:
        return int(self.db.conn.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0])

    # ------------------------------------------------------------------------------------ retention

    @property
    def purge_interval(self) -> float:
        """How often the background purge runs: a quarter of the retention, between 1 s and 5 min."""
        return min(300.0, max(1.0, self.retention / 4))

    def purge_step(self, tx: sqlite3.Connection, item: Due, schedule: Schedule) -> None:
        """The ``idempotency.purge`` scheduler step: purge a batch, then schedule the next run (at once
        while a full batch came out, else after :attr:`purge_interval`)."""
        deleted = self.purge()
        if deleted:
            log.info("idempotency_purged", records=deleted)
        now = self.clock.time()
        schedule.add(PURGE, {}, due=now if deleted >= _PURGE_BATCH else now + self.purge_interval)

    def schedule_purge(self, schedule: Schedule) -> None:
        """At start: one purge item on the schedule (a restart finds the one it left, due or not)."""
        if schedule.count(PURGE) == 0:
            schedule.add(PURGE, {}, due=self.clock.time() + self.purge_interval)


def _answer(row: sqlite3.Row) -> Answer:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in orjson.loads(row["headers"])]
    return Answer(row["status"], headers, bytes(row["body"]))
