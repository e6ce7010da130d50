"""Idempotency records in the gateway's SQLite file (:class:`SqliteIdempotencyRecords`).

Every live claim is stamped with the claiming process's ``boot`` id: one gateway process owns a state
directory (the Helm chart refuses replicas while the store is SQLite), so an ``in_flight`` record stamped
by another boot is a claim whose process died (``kill -9`` mid-forward), which nobody will ever complete.

The scope is stored as a SHA-256 digest of (principal, mode, key): the index stays small whatever the
keys' length, and a client's keys (often order numbers) are not kept in clear. Durability: a completion
is committed before its answer leaves the gateway, in WAL with the database's ``synchronous`` level
(:mod:`proxy.store.database`: NORMAL survives ``kill -9``; FULL also a power loss).

Expired records count as absent at once; a scheduler step (``idempotency.purge``) deletes them in the
background and reschedules itself.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import orjson
import structlog

from proxy.clock import Clock
from proxy.store.database import Database
from proxy.store.idempotency import PURGE, PURGE_BATCH, Answer, Claim, RecentAnswers, Scope
from proxy.store.schedule import Due, Schedule

log = structlog.get_logger("proxy.store")

# Rows in creation order (the rowid): appends share the last page of the table, and the purge walks the
# oldest rows first, with no index on the expiry time to keep up on every write. Only the scope index is
# written at a random place.
MIGRATIONS = [
    """
    CREATE TABLE idempotency (
        id INTEGER PRIMARY KEY,
        scope BLOB NOT NULL UNIQUE,
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
    )
    """,
]

class SqliteIdempotencyRecords:
    """:class:`IdempotencyRecords` in the gateway's SQLite file. Statements run on the event loop's
    thread with no ``await`` inside a method, so no other request runs between a claim's read and its
    write; a live claim is taken under ``BEGIN IMMEDIATE`` (:meth:`Database.transaction`), which keeps
    other processes out too.

    Where a claim is held depends on what a crash may lose. A **live** claim is committed before the
    request may leave for the provider: after ``kill -9`` the record says the provider may have it. A
    **test** claim is held in memory: a test request reaches no provider, so a claim lost in a crash
    costs nothing (the retry is processed anew, as it would be after taking over a dead process's claim),
    and the stateless test-mode path pays one write per keyed request, not two. A completion is committed
    before its answer leaves (:mod:`proxy.recorder`), together with the others of the same loop turn.

    Each statement costs ~5-15 µs here (a WAL read transaction takes locks on the shared-memory index), so
    answers replayed lately are also kept in memory (:class:`RecentAnswers`): a client retrying one key in
    a loop is answered from the file once, then without touching it.
    """

    def __init__(self, db: Database, clock: Clock, *, retention: float = 86_400.0, boot: str | None = None) -> None:
        if retention <= 0:
            raise ValueError("idempotency retention must be positive")
        self.db = db
        self.clock = clock
        self.retention = retention
        self.boot = boot or os.urandom(8).hex()  # this process's claims; any other boot's are orphans
        self._test_claims: dict[bytes, bytes] = {}  # digest -> fingerprint, test claims in flight here
        self._batch: list[tuple[Claim, Answer, asyncio.Future[bool]]] = []  # completions for the group commit
        self._recent = RecentAnswers()
        db.migrate("idempotency", MIGRATIONS)

    def claim(self, scope: Scope, fingerprint: bytes) -> Claim:
        digest = scope.digest()
        held = self._test_claims.get(digest)
        if held is not None:
            return Claim("in_flight" if held == fingerprint else "mismatch", scope, digest, fingerprint)
        recent = self._recent.get(digest, self.clock.time())
        if recent is not None:  # a completed record, as stored: no statement at all
            if recent[0] != fingerprint:
                return Claim("mismatch", scope, digest, fingerprint)
            return Claim("replay", scope, digest, fingerprint, recent[1])
        # The common repeat (a replay, a duplicate in flight) is a plain read: no write lock taken.
        found = self._judge(self._row(digest), scope, digest, fingerprint)
        if found is not None:
            return found
        if scope.mode == "test":  # absent, expired, or left by a dead process: nothing reached a provider
            self._test_claims[digest] = fingerprint
            return Claim("claimed", scope, digest, fingerprint)
        with self.db.transaction() as tx:  # BEGIN IMMEDIATE: read again under the write lock, then write
            row = self._row(digest)
            found = self._judge(row, scope, digest, fingerprint)
            if found is not None:
                return found
            now = self.clock.time()
            if row is not None and row["expires_at"] > now:
                # In flight under a boot that is gone: nobody will complete it; the caller takes it over.
                tx.execute("UPDATE idempotency SET owner = ? WHERE scope = ?", (self.boot, digest))
                log.warning("idempotency_claim_orphaned", key_id=scope.principal, mode=scope.mode)
                return Claim("claimed", scope, digest, fingerprint, orphaned=True)
            tx.execute(  # absent, or expired: processed anew
                "INSERT OR REPLACE INTO idempotency (scope, principal, mode, fingerprint, state, owner, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, 'in_flight', ?, ?, ?)",
                (digest, scope.principal, scope.mode, fingerprint, self.boot, now, now + self.retention),
            )
        return Claim("claimed", scope, digest, fingerprint)

    def _row(self, digest: bytes) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.conn.execute(
            "SELECT fingerprint, state, owner, status, headers, body, expires_at FROM idempotency WHERE scope = ?",
            (digest,),
        ).fetchone()
        return row

    def _judge(self, row: sqlite3.Row | None, scope: Scope, digest: bytes, fingerprint: bytes) -> Claim | None:
        """The answer a live record gives without a write, or None (absent, expired, or orphaned)."""
        if row is None or row["expires_at"] <= self.clock.time():
            return None
        if row["fingerprint"] != fingerprint:
            return Claim("mismatch", scope, digest, fingerprint)
        if row["state"] == "complete":
            answer = _answer(row)
            self._recent.put(digest, fingerprint, answer, row["expires_at"])
            return Claim("replay", scope, digest, fingerprint, answer)
        if row["owner"] == self.boot:
            return Claim("in_flight", scope, digest, fingerprint)
        return None

    async def complete(self, claim: Claim, answer: Answer) -> bool:
        """Store ``answer`` for a claim this process holds; durable when this returns. Completions made in
        one turn of the event loop commit in one transaction (group commit): under load one WAL commit, and
        its shared pages, serve many requests. False if the claim is no longer held (released, or purged
        after an in-flight time longer than the retention)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._batch.append((claim, answer, future))
        if len(self._batch) == 1:
            loop.call_soon(self.flush)
        return await future

    def complete_now(self, claim: Claim, answer: Answer) -> bool:
        """:meth:`complete` without waiting for the loop (its own transaction, or a part of the caller's)."""
        try:
            with self.db.transaction():
                return self._write(claim, answer)
        finally:
            self._test_claims.pop(claim.digest, None)

    def flush(self) -> None:
        """Commit the completions waiting for the group commit (the loop calls it; so does shutdown)."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        try:
            with self.db.transaction():
                written = [self._write(claim, answer) for claim, answer, _ in batch]
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:  # committed or not, these test claims are over (a retry is processed anew)
            for claim, _, _ in batch:
                self._test_claims.pop(claim.digest, None)
        for (_, _, future), ok in zip(batch, written, strict=True):
            if not future.done():  # its request may have been cancelled meanwhile: the record stays
                future.set_result(ok)

    def _write(self, claim: Claim, answer: Answer) -> bool:
        now = self.clock.time()
        headers = orjson.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in answer.headers])
        if claim.scope.mode == "test":
            if claim.digest not in self._test_claims:
                return False
            self.db.conn.execute(
                "INSERT OR REPLACE INTO idempotency (scope, principal, mode, fingerprint, state, owner, status, "
                "headers, body, created_at, completed_at, expires_at) "
                "VALUES (?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?)",
                (claim.digest, claim.scope.principal, claim.scope.mode, claim.fingerprint, self.boot, answer.status,
                 headers, answer.body, now, now, now + self.retention),
            )
            return True
        cursor = self.db.conn.execute(
            "UPDATE idempotency SET state = 'complete', status = ?, headers = ?, body = ?, completed_at = ?, "
            "expires_at = ? WHERE scope = ? AND owner = ? AND state = 'in_flight'",
            (answer.status, headers, answer.body, now, now + self.retention, claim.digest, self.boot),
        )
        return cursor.rowcount == 1

    def release(self, claim: Claim) -> None:
        """Forget a claim this process holds: the request did not run (or may run again), so a retry proceeds."""
        if claim.scope.mode == "test":
            self._test_claims.pop(claim.digest, None)
            return
        self.db.conn.execute("DELETE FROM idempotency WHERE scope = ? AND owner = ? AND state = 'in_flight'",
                             (claim.digest, self.boot))

    def purge(self, limit: int = PURGE_BATCH) -> int:
        """Delete the expired among the ``limit`` oldest records (never a claim this process is still working
        on). Records expire nearly in creation order (retention after completion, and completion follows
        creation within the upstream deadline), so a record that outlives an older one waits a round."""
        cursor = self.db.conn.execute(
            "DELETE FROM idempotency WHERE id IN (SELECT id FROM (SELECT id, expires_at, state, owner FROM "
            "idempotency ORDER BY id LIMIT ?) WHERE expires_at <= ? AND NOT (state = 'in_flight' AND owner = ?))",
            (limit, self.clock.time(), self.boot),
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
        schedule.add(PURGE, {}, due=now if deleted >= PURGE_BATCH else now + self.purge_interval)

    def schedule_purge(self, schedule: Schedule) -> None:
        """At start: one purge item on the schedule (a restart finds the one it left, due or not)."""
        if schedule.count(PURGE) == 0:
            schedule.add(PURGE, {}, due=self.clock.time() + self.purge_interval)


def _answer(row: sqlite3.Row) -> Answer:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in orjson.loads(row["headers"])]
    return Answer(row["status"], headers, bytes(row["body"]))
