"""Idempotency records: the contract every store implements (SQLite today; Redis joins the list)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.clock import ManualClock
from proxy.store.database import Database
from proxy.store.idempotency import Answer, IdempotencyRecords, Scope, SqliteIdempotencyRecords

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
    assert records.complete(claim, ANSWER)
    replay = records.claim(SCOPE, b"fp1")
    assert replay.state == "replay" and replay.answer == ANSWER


def test_another_fingerprint_is_a_mismatch_in_flight_or_complete(make: Make) -> None:
    records = make()
    claim = records.claim(SCOPE, b"fp1")
    assert records.claim(SCOPE, b"fp2").state == "mismatch"
    records.complete(claim, ANSWER)
    assert records.claim(SCOPE, b"fp2").state == "mismatch"


@pytest.mark.parametrize("other", [Scope("sent:key_b", "live", "order-1"), Scope("sent:key_a", "test", "order-1"),
                                   Scope("sent:key_a", "live", "order-2"), Scope("sendgrid:key_a", "live", "order-1")])
def test_scopes_are_apart(make: Make, other: Scope) -> None:
    records = make()
    records.complete(records.claim(SCOPE, b"fp1"), ANSWER)
    assert records.claim(other, b"fp1").state == "claimed"


def test_a_released_claim_is_free_again_and_cannot_be_completed(make: Make) -> None:
    records = make()
    claim = records.claim(SCOPE, b"fp1")
    records.release(claim)
    assert not records.complete(claim, ANSWER)
    assert records.claim(SCOPE, b"fp1").state == "claimed"


def test_an_expired_record_is_processed_anew_then_purged(make: Make, clock: ManualClock) -> None:
    records = make(retention=60)
    records.complete(records.claim(SCOPE, b"fp1"), ANSWER)
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
    records.complete(claim, ANSWER)
    clock.advance(50)
    assert records.claim(SCOPE, b"fp1").state == "replay"


def test_the_purge_spares_this_process_claims_in_flight(make: Make, clock: ManualClock) -> None:
    records = make(retention=60)
    claim = records.claim(SCOPE, b"fp1")
    clock.advance(120)  # a forward slower than the retention
    assert records.purge() == 0
    assert records.complete(claim, ANSWER)


def test_a_claim_of_a_dead_process_is_taken_over_once(make: Make) -> None:
    dead, alive = make(boot="dead"), make(boot="alive")
    dead.claim(SCOPE, b"fp1")
    taken = alive.claim(SCOPE, b"fp1")
    assert taken.state == "claimed" and taken.orphaned
    assert alive.claim(SCOPE, b"fp1").state == "in_flight"
    assert not dead.complete(taken, ANSWER)  # the old owner cannot finish it any more
    assert alive.complete(taken, ANSWER)
    assert alive.claim(SCOPE, b"fp1").state == "replay"


def test_a_dead_process_claim_with_another_body_is_still_a_mismatch(make: Make) -> None:
    make(boot="dead").claim(SCOPE, b"fp1")
    assert make(boot="alive").claim(SCOPE, b"fp2").state == "mismatch"


def test_an_empty_body_replays_as_empty(make: Make) -> None:
    records = make()
    records.complete(records.claim(SCOPE, b"fp1"), Answer(204, [], b""))
    assert records.claim(SCOPE, b"fp1").answer == Answer(204, [], b"")


def test_retention_must_be_positive(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="positive"):
        SqliteIdempotencyRecords(Database(tmp_path / "s.db"), clock, retention=0)


def test_keys_are_not_stored_in_clear(tmp_path: Path, clock: ManualClock) -> None:
    db = Database(tmp_path / "s.db")
    records = SqliteIdempotencyRecords(db, clock)
    records.complete(records.claim(SCOPE, b"fp1"), ANSWER)
    db.close()  # checkpointed into the database file
    stored = (tmp_path / "s.db").read_bytes()
    assert b"m1" in stored and b"order-1" not in stored
