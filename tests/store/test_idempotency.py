"""Idempotency records: the contract every store implements (SQLite today; Redis joins the list)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.clock import ManualClock
from proxy.store.database import Database
from proxy.store.idempotency import Answer, IdempotencyRecords, RecentAnswers, Scope
from proxy.store.idempotency_sqlite import SqliteIdempotencyRecords

Make = Callable[..., IdempotencyRecords]  # make(boot=..., retention=...) -> records sharing one store
SCOPE = Scope("sent:key_a", "live", "order-1")
ANSWER = Answer(201, [(b"content-type", b"application/json"), (b"x-request-id", b"req_1")], b'{"id":"m1"}')


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Make]:
    db = Database(tmp_path / "state.db")

    def sqlite(*, boot: str = "boot_a", retention: float = 60.0) -> IdempotencyRecords:
        return SqliteIdempotencyRecords(db, clock, retention=retention, boot=boot)

    yield sqlite
    db.close()


def test_first_use_claims_then_the_answer_is_replayed(make: Make) -> None:
    records = make()
    claim = records.claim(SCOPE, b"fp1")
    assert claim.state == "claimed" and not claim.orphaned
    assert records.claim(SCOPE, b"fp1").state == "in_flight"
    assert records.complete_now(claim, ANSWER)
    replay = records.claim(SCOPE, b"fp1")
    assert replay.state == "replay" and replay.answer == ANSWER


def test_another_fingerprint_is_a_mismatch_in_flight_or_complete(make: Make) -> None:
    records = make()
    claim = records.claim(SCOPE, b"fp1")
    assert records.claim(SCOPE, b"fp2").state == "mismatch"
    records.complete_now(claim, ANSWER)
    assert records.claim(SCOPE, b"fp2").state == "mismatch"


@pytest.mark.parametrize("other", [Scope("sent:key_b", "live", "order-1"), Scope("sent:key_a", "test", "order-1"),
                                   Scope("sent:key_a", "live", "order-2"), Scope("sendgrid:key_a", "live", "order-1")])
def test_scopes_are_apart(make: Make, other: Scope) -> None:
    records = make()
    records.complete_now(records.claim(SCOPE, b"fp1"), ANSWER)
    assert records.claim(other, b"fp1").state == "claimed"


def test_a_released_claim_is_free_again_and_cannot_be_completed(make: Make) -> None:
    records = make()
    claim = records.claim(SCOPE, b"fp1")
    records.release(claim)
    assert not records.complete_now(claim, ANSWER)
    assert records.claim(SCOPE, b"fp1").state == "claimed"


def test_an_expired_record_is_processed_anew_then_purged(make: Make, clock: ManualClock) -> None:
    records = make(retention=60)
    records.complete_now(records.claim(SCOPE, b"fp1"), ANSWER)
    clock.advance(59.9)
    assert records.claim(SCOPE, b"fp1").state == "replay"
    assert records.purge() == 0
    clock.advance(0.2)
    assert records.purge() == 1
    assert records.claim(SCOPE, b"fp2").state == "claimed"  # another body is fine once the key expired


def test_retention_counts_from_completion(make: Make, clock: ManualClock) -> None:
    records = make(retention=60)
    claim = records.claim(SCOPE, b"fp1")
    clock.advance(50)
    records.complete_now(claim, ANSWER)
    clock.advance(50)
    assert records.claim(SCOPE, b"fp1").state == "replay"


def test_the_purge_spares_this_process_claims_in_flight(make: Make, clock: ManualClock) -> None:
    records = make(retention=60)
    claim = records.claim(SCOPE, b"fp1")
    clock.advance(120)  # a forward slower than the retention
    assert records.purge() == 0
    assert records.complete_now(claim, ANSWER)


def test_a_claim_of_a_dead_process_is_taken_over_once(make: Make) -> None:
    dead, alive = make(boot="dead"), make(boot="alive")
    dead.claim(SCOPE, b"fp1")
    taken = alive.claim(SCOPE, b"fp1")
    assert taken.state == "claimed" and taken.orphaned
    assert alive.claim(SCOPE, b"fp1").state == "in_flight"
    assert not dead.complete_now(taken, ANSWER)  # the old owner cannot finish it any more
    assert alive.complete_now(taken, ANSWER)
    assert alive.claim(SCOPE, b"fp1").state == "replay"


def test_a_dead_process_claim_with_another_body_is_still_a_mismatch(make: Make) -> None:
    make(boot="dead").claim(SCOPE, b"fp1")
    assert make(boot="alive").claim(SCOPE, b"fp2").state == "mismatch"


async def test_completions_of_one_loop_turn_commit_together_before_they_return(make: Make) -> None:
    records = make()
    scopes = [Scope("sent:key_a", mode, f"batch-{n}") for n in range(3) for mode in ("test", "live")]
    claims = [records.claim(scope, b"fp1") for scope in scopes]
    pending = asyncio.gather(*(records.complete(claim, ANSWER) for claim in claims))
    await asyncio.sleep(0)  # the completions are queued for the group commit, not yet written
    assert all(records.claim(scope, b"fp1").state == "in_flight" for scope in scopes)
    assert await pending == [True] * len(scopes)
    assert all(records.claim(scope, b"fp1").answer == ANSWER for scope in scopes)


def test_a_test_claim_lives_in_this_process_only(make: Make) -> None:
    """A test request reaches no provider: its claim is not written, and after a crash (another boot) the
    key is simply processed anew. Only its completed answer is stored."""
    scope = Scope("sent:key_a", "test", "order-1")
    first = make(boot="first")
    claim = first.claim(scope, b"fp1")
    assert first.claim(scope, b"fp1").state == "in_flight"
    assert make(boot="second").claim(scope, b"fp1").state == "claimed"
    assert first.complete_now(claim, ANSWER)
    assert make(boot="third").claim(scope, b"fp1").state == "replay"


def test_an_empty_body_replays_as_empty(make: Make) -> None:
    records = make()
    records.complete_now(records.claim(SCOPE, b"fp1"), Answer(204, [], b""))
    assert records.claim(SCOPE, b"fp1").answer == Answer(204, [], b"")


def test_retention_must_be_positive(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqliteIdempotencyRecords(Database(tmp_path / "s.db"), clock, retention=0)


def test_keys_are_not_stored_in_clear(tmp_path: Path, clock: ManualClock) -> None:
    db = Database(tmp_path / "s.db")
    records = SqliteIdempotencyRecords(db, clock)
    records.complete_now(records.claim(SCOPE, b"fp1"), ANSWER)
    db.close()  # checkpointed into the database file
    stored = (tmp_path / "s.db").read_bytes()
    assert b"m1" in stored and b"order-1" not in stored


def test_recent_answers_are_bounded_by_size_and_expire() -> None:
    recent = RecentAnswers(max_bytes=8 * 1024)
    small = Answer(201, [], b"x" * 500)
    for n in range(20):
        recent.put(b"d%d" % n, b"fp", small, expires_at=100.0)
    assert recent.size <= 8 * 1024 and recent.get(b"d19", 50.0) == (b"fp", small)
    assert recent.get(b"d0", 50.0) is None  # the oldest made room
    assert recent.get(b"d19", 100.0) is None  # expired: the store decides again
    recent.put(b"big", b"fp", Answer(201, [], b"x" * 2048), expires_at=100.0)
    assert recent.get(b"big", 50.0) is None  # larger than an eighth of the room: not kept
