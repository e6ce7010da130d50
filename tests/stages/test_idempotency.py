"""Idempotency: one run per key, the first answer replayed byte for byte, errors released or recorded.

The stage runs inside *observe* (errors render as a client sees them) in front of a scripted inner app
that stands for every responder (a synthesized answer, the provider's), over a real SQLite store and a
clock the tests move.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from proxy.clock import ManualClock
from proxy.context import context_of
from proxy.errors import GatewayError
from proxy.keys.identity import KeyIdentity
from proxy.metrics import Metrics
from proxy.policy.model import Policy, PolicySet
from proxy.recorder import MAX_RECORDED_BYTES
from proxy.scheduler import Scheduler
from proxy.stages.idempotency import Idempotency, derived_key, fingerprint, principal
from proxy.stages.observe import Observe
from proxy.store.database import Database
from proxy.store.idempotency import PURGE
from proxy.store.idempotency import Scope as KeyScope
from proxy.store.idempotency_sqlite import SqliteIdempotencyRecords
from proxy.store.schedule import Schedule
from tests.stages.harness import Seed
from tests.stages.seeds import issued, passthrough, seed

BODY = {"to": ["+15555550100"], "text": "hi"}
NO_RETRY = {"x-should-retry": "false"}  # as proxy.forward marks an unknown outcome
Step = Callable[[Scope, Receive, Send], Any]


class Inner:
    """Stands for the responders: each call runs the next scripted step (default: a fresh 201)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.seen_headers: list[list[tuple[bytes, bytes]]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.entered.set()
        self.seen_headers.append(list(scope["headers"]))
        if self.gate is not None:
            await self.gate.wait()
        step = self.steps.pop(0) if self.steps else created
        await step(scope, receive, send)


async def answer(send: Send, scope: Scope, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    ctx = context_of(scope)
    ctx.status = status
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"x-request-id", ctx.request_id.encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def created(scope: Scope, receive: Receive, send: Send) -> None:
    """A fresh answer each time (a new id), as a provider or the synthesizer gives."""
    body = orjson.dumps({"data": {"id": os.urandom(8).hex()}, "meta": {"request_id": context_of(scope).request_id}})
    await answer(send, scope, 201, body, [(b"content-type", b"application/json"), (b"x-ratelimit-remaining", b"9")])


def status(code: int, headers: list[tuple[bytes, bytes]] | None = None) -> Step:
    async def step(scope: Scope, receive: Receive, send: Send) -> None:
        await answer(send, scope, code, b'{"provider": %d}' % code, [(b"content-type", b"application/json"),
                                                                      *(headers or [])])
    return step


def raises(error: BaseException, *, forwarding: bool = False, started: bool = False) -> Step:
    async def step(scope: Scope, receive: Receive, send: Send) -> None:
        if forwarding:
            context_of(scope).mark("forward")
        if started:
            context_of(scope).status = 200
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{partial", "more_body": True})
        raise error
    return step


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


@pytest.fixture
def records(db: Database, clock: ManualClock) -> SqliteIdempotencyRecords:
    return SqliteIdempotencyRecords(db, clock, retention=100)


@pytest.fixture
def sendgrid(policy_set: PolicySet) -> Policy:
    policy = policy_set.by_name("sendgrid")
    assert policy is not None
    return policy


def client(records: SqliteIdempotencyRecords, inner: Inner, policy: Policy, *, key: KeyIdentity | None = None,
           test_mode: bool = False, path: str = "/v3/messages", body: Any = BODY) -> httpx.AsyncClient:
    metrics = Metrics(CollectorRegistry())
    seeder = seed(policy, "POST", path, key=key or issued("live"), body=body, test_mode=test_mode)
    stage = Idempotency(inner, records=records, metrics=metrics, clock=records.clock)
    app = Observe(Seed(stage, seeder), metrics=metrics, clock=records.clock)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def post(http: httpx.AsyncClient, key: str | bytes | None = "k1", path: str = "/v3/messages",
               method: str = "POST") -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await http.request(method, path, headers=headers)


# ------------------------------------------------------------------------------------- the hot path


@pytest.mark.parametrize(("key", "method"), [(None, "POST"), ("k1", "GET")])
async def test_no_key_or_a_read_passes_on_and_never_touches_the_store(
    sent: Policy, records: SqliteIdempotencyRecords, key: str | None, method: str
) -> None:
    inner = Inner()
    async with client(records, inner, sent) as http:
        first, second = await post(http, key, method=method), await post(http, key, method=method)
    assert (first.status_code, second.status_code, inner.calls) == (201, 201, 2)
    assert first.content != second.content
    assert records.count() == 0


# ------------------------------------------------------------------------------------- replay


async def test_a_retry_gets_the_first_answer_byte_for_byte(sent: Policy, records: SqliteIdempotencyRecords) -> None:
    inner = Inner()
    async with client(records, inner, sent) as http:
        first = await post(http)
        again = await post(http)
    assert inner.calls == 1
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["x-request-id"] == first.headers["x-request-id"] == first.json()["meta"]["request_id"]
    assert again.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert "x-ratelimit-remaining" not in again.headers  # only the headers a client reads back are kept


async def test_key_order_and_whitespace_do_not_change_the_request(sent: Policy,
                                                                  records: SqliteIdempotencyRecords) -> None:
    inner = Inner()
    async with client(records, inner, sent, body={"text": "hi", "to": ["+15555550100"]}) as http:
        first = await post(http)
    async with client(records, inner, sent, body={"to": ["+15555550100"], "text": "hi"}) as http:
        again = await post(http)
    assert inner.calls == 1 and again.content == first.content


@pytest.mark.parametrize(
    ("change"),
    [{"body": {"to": ["+15555550199"], "text": "hi"}}, {"path": "/v3/contacts"}],
    ids=["other-body", "other-path"],
)
async def test_the_key_reused_for_another_request_is_422_and_not_retried(
    sent: Policy, records: SqliteIdempotencyRecords, change: dict[str, Any]
) -> None:
    inner = Inner()
    async with client(records, inner, sent) as http:
        await post(http)
    async with client(records, inner, sent, **change) as http:
        response = await post(http, path=change.get("path", "/v3/messages"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_002"
    assert response.headers["x-should-retry"] == "false"
    assert inner.calls == 1


async def test_the_scope_is_the_caller_and_the_mode(sent: Policy, records: SqliteIdempotencyRecords) -> None:
    inner = Inner()
    other = issued("live", key="sk_live_gw_other")
    other = KeyIdentity("key_other", other.kind, other.mode, other.scopes, other.forward_credential, other.presented)
    for kwargs in ({}, {"key": other}, {"test_mode": True}, {"key": passthrough()}):
        async with client(records, inner, sent, **kwargs) as http:  # type: ignore[arg-type]
            assert (await post(http)).status_code == 201
    assert inner.calls == 4


# ------------------------------------------------------------------------------------- malformed keys


@pytest.mark.parametrize(
    ("policy_name", "key", "ok"),
    [
        ("sent", "order-1_A", True), ("sent", "k" * 255, True),
        ("sent", "", False), ("sent", "k" * 256, False), ("sent", "order.1", False), ("sent", "a b", False),
        ("sent", b"caf\xc3\xa9", False),
        ("sendgrid", "order.1:{x}", True), ("sendgrid", "a b", False), ("sendgrid", "tab\there", False),
        ("sendgrid", "k" * 256, False),
    ],
)
async def test_a_malformed_key_is_400_and_nothing_runs(
    policy_set: PolicySet, records: SqliteIdempotencyRecords, policy_name: str, key: str | bytes, ok: bool
) -> None:
    policy = policy_set.by_name(policy_name)
    assert policy is not None
    inner = Inner()
    path = "/v3/messages" if policy_name == "sent" else "/v3/mail/send"
    async with client(records, inner, policy, path=path) as http:
        response = await post(http, key, path=path)
    assert (response.status_code == 201) is ok, response.text
    if not ok:
        assert response.status_code == 400 and inner.calls == 0 and records.count() == 0
        if policy_name == "sent":
            assert response.json()["error"]["code"] == "VALIDATION_007"
            assert list(response.json()["error"]["details"]) == ["Idempotency-Key"]
        else:
            assert "Idempotency-Key" in response.json()["errors"][0]["message"]


async def test_the_key_twice_is_400(sent: Policy, records: SqliteIdempotencyRecords) -> None:
    inner = Inner()
    async with client(records, inner, sent) as http:
        response = await http.post("/v3/messages", headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert response.status_code == 400 and inner.calls == 0


# ------------------------------------------------------------------------------------- in flight


async def test_a_duplicate_in_flight_is_409_at_once_and_retryable(sent: Policy,
                                                                   records: SqliteIdempotencyRecords) -> None:
    inner = Inner()
    inner.gate = asyncio.Event()
    async with client(records, inner, sent) as http:
        first = asyncio.create_task(post(http))
        await inner.entered.wait()
        duplicate = await post(http)  # answered while the first is held: never a wait
        assert duplicate.status_code == 409
        assert duplicate.headers["retry-after"] == "1"
        assert duplicate.headers["x-should-retry"] == "true"  # the clients retry it (their other 409s: false)
        assert duplicate.json()["error"]["code"] == "IDEMPOTENCY_001"
        inner.gate.set()
        done = await first
        replay = await post(http)
    assert inner.calls == 1 and done.status_code == 201 and replay.content == done.content


# ------------------------------------------------------------------------------------- errors inside


@pytest.mark.parametrize(
    ("error", "forwarding"),
    [
        (GatewayError(502, "upstream_unreachable", "refused", outcome="not_sent"), True),
        (GatewayError(404, "test_mode_unsupported", "not simulated"), False),
        (RuntimeError("a bug before anything was sent"), False),
        (GatewayError(502, "upstream_unreachable", "refused", outcome="not_sent"), "started"),
    ],
    ids=["not_sent", "no-outcome", "bug-before-forward", "not_sent-after-a-buffered-start"],
)
async def test_an_error_that_ran_nothing_releases_the_key(
    sent: Policy, records: SqliteIdempotencyRecords, error: BaseException, forwarding: bool | str
) -> None:
    inner = Inner(raises(error, forwarding=forwarding is True, started=forwarding == "started"))
    async with client(records, inner, sent) as http:
        failed = await post(http)
        retried = await post(http)
    assert failed.status_code in (404, 500, 502) and "idempotent-replayed" not in failed.headers
    assert retried.status_code == 201 and inner.calls == 2


async def test_a_test_request_that_fails_mid_answer_is_released_it_reached_nobody(
    sent: Policy, records: SqliteIdempotencyRecords
) -> None:
    inner = Inner(raises(RuntimeError("a responder bug"), started=True))
    async with client(records, inner, sent, key=issued("test"), test_mode=True) as http:
        failed = await post(http)
        retried = await post(http)
    assert failed.status_code == 500 and failed.json()["error"]["outcome"] == "not_sent"
    assert retried.status_code == 201 and inner.calls == 2


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (raises(GatewayError(504, "upstream_timeout", "late", outcome="unknown", headers=NO_RETRY)), 504),
        (raises(GatewayError(502, "upstream_bad_response", "reset", outcome="unknown", headers=NO_RETRY)), 502),
        (raises(RuntimeError("after sending"), forwarding=True), 502),
        (raises(ConnectionResetError("mid-body"), started=True), 502),
    ],
    ids=["timeout", "reset", "bug-while-forwarding", "body-interrupted"],
)
async def test_an_unknown_outcome_is_recorded_and_replayed_never_run_again(
    sent: Policy, records: SqliteIdempotencyRecords, step: Step, expected: int
) -> None:
    inner = Inner(step)
    async with client(records, inner, sent) as http:
        failed = await post(http)
        replay = await post(http)
    assert failed.status_code == expected
    assert failed.json()["error"]["outcome"] == "unknown" and failed.headers["x-should-retry"] == "false"
    assert (replay.status_code, replay.content) == (failed.status_code, failed.content)
    assert replay.headers["x-request-id"] == failed.headers["x-request-id"]
    assert replay.headers["idempotent-replayed"] == "true" and inner.calls == 1


@pytest.mark.parametrize(
    ("code", "headers", "kept"),
    [(429, [], False), (503, [(b"retry-after", b"2")], False), (503, [], True), (500, [], True), (409, [], True)],
)
async def test_try_later_answers_release_the_key_others_are_kept(
    sent: Policy, records: SqliteIdempotencyRecords, code: int, headers: list[tuple[bytes, bytes]], kept: bool
) -> None:
    inner = Inner(status(code, headers))
    async with client(records, inner, sent) as http:
        first = await post(http)
        second = await post(http)
    assert first.status_code == code
    assert second.status_code == (code if kept else 201)
    assert inner.calls == (1 if kept else 2)


async def test_an_answer_too_large_to_replay_is_a_recorded_502(sent: Policy, records: SqliteIdempotencyRecords) -> None:
    async def huge(scope: Scope, receive: Receive, send: Send) -> None:
        context_of(scope).mark("forward")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"x" * (MAX_RECORDED_BYTES // 2), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    inner = Inner(huge)
    async with client(records, inner, sent) as http:
        first = await post(http)
        replay = await post(http)
    assert first.status_code == 502 and first.json()["error"]["outcome"] == "unknown"
    assert replay.content == first.content and inner.calls == 1


def cancelled_request(records: SqliteIdempotencyRecords, inner: Inner, policy: Policy) -> Any:
    """The pipeline called directly (httpx cannot hand a cancellation in): a coroutine for one keyed request
    whose answer must never leave."""
    metrics = Metrics(CollectorRegistry())
    stage = Idempotency(inner, records=records, metrics=metrics, clock=records.clock)
    app = Observe(Seed(stage, seed(policy, "POST", "/v3/messages", key=issued("live"), body=BODY, test_mode=False)),
                  metrics=metrics)
    scope = {"type": "http", "method": "POST", "path": "/v3/messages", "raw_path": b"/v3/messages",
             "query_string": b"", "headers": [(b"idempotency-key", b"k1")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent for a cancelled request")

    return app(scope, receive, send)


async def test_a_cancelled_forward_is_recorded_as_unknown(sent: Policy, records: SqliteIdempotencyRecords) -> None:
    inner = Inner(raises(asyncio.CancelledError(), forwarding=True))
    with pytest.raises(asyncio.CancelledError):
        await cancelled_request(records, inner, sent)
    async with client(records, Inner(), sent) as http:
        retry = await post(http)
    assert retry.status_code == 502 and retry.json()["error"]["outcome"] == "unknown"
    assert retry.headers["idempotent-replayed"] == "true" and inner.calls == 1


async def test_an_answer_cancelled_while_waiting_for_the_group_commit_is_recorded_not_replaced(
    sent: Policy, records: SqliteIdempotencyRecords
) -> None:
    inner = Inner()
    task = asyncio.create_task(cancelled_request(records, inner, sent))
    await asyncio.sleep(0)  # the answer is complete and queued for the commit
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with client(records, inner, sent) as http:
        retry = await post(http)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true" and inner.calls == 1


# ------------------------------------------------------------------------------------- a dead process's claim


async def test_a_live_claim_of_a_dead_process_answers_unknown_and_is_never_sent(
    sent: Policy, db: Database, clock: ManualClock, records: SqliteIdempotencyRecords
) -> None:
    async with client(records, Inner(), sent) as http:
        await post(http, "other")  # the store is in use
    dead = SqliteIdempotencyRecords(db, clock, retention=100, boot="dead")
    _claim_like_a_request(dead, sent, issued("live"), "live")
    inner = Inner()
    async with client(records, inner, sent) as http:
        first = await post(http)
        again = await post(http)
    assert inner.calls == 0
    assert first.status_code == 502 and first.json()["error"]["code"] == "GATEWAY_006"
    assert first.json()["error"]["outcome"] == "unknown" and first.headers["x-should-retry"] == "false"
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


async def test_a_test_claim_of_a_dead_process_is_processed_anew(
    sent: Policy, db: Database, clock: ManualClock, records: SqliteIdempotencyRecords
) -> None:
    dead = SqliteIdempotencyRecords(db, clock, retention=100, boot="dead")
    _claim_like_a_request(dead, sent, issued("test"), "test")
    inner = Inner()
    async with client(records, inner, sent, key=issued("test"), test_mode=True) as http:
        first = await post(http)
    assert first.status_code == 201 and inner.calls == 1


def _claim_like_a_request(records: SqliteIdempotencyRecords, policy: Policy, key: KeyIdentity,
                          mode: Literal["test", "live"]) -> None:
    """Claim "k1" for BODY exactly as the stage would, and never complete it: the process died."""
    claim = records.claim(KeyScope(principal(policy, key), mode, "k1"), fingerprint("POST", "/v3/messages", b"", BODY))
    assert claim.state == "claimed"


# ------------------------------------------------------------------------------------- retention


async def test_an_expired_key_is_processed_anew_and_purged(sent: Policy, db: Database, clock: ManualClock,
                                                           records: SqliteIdempotencyRecords) -> None:
    schedule = Schedule(db, clock)
    scheduler = Scheduler(schedule, clock)
    scheduler.step(PURGE, lambda tx, item: records.purge_step(tx, item, schedule))
    records.schedule_purge(schedule)
    inner = Inner()
    async with client(records, inner, sent) as http:
        await post(http)
        clock.advance(99)
        assert (await post(http)).headers.get("idempotent-replayed") == "true"
        clock.advance(2)  # 101 s after completion: past the retention
        assert records.count() == 1
        scheduler.run_due()
        assert records.count() == 0  # purged in the background
        again = await post(http)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers and inner.calls == 2
    assert schedule.count(PURGE) == 1  # the purge rescheduled itself


# ------------------------------------------------------------------------------------- what the provider sees


@pytest.mark.parametrize(
    ("policy_name", "key", "expected"),
    [
        ("sent", passthrough(), b"k1"),  # the caller's own Sent key: untouched
        ("sent", issued("live"), derived_key("key_test", "k1").encode()),  # one provider account behind it
        ("sendgrid", issued("live"), None),  # SendGrid has no idempotency: the gateway's header only
    ],
    ids=["sent-passthrough", "sent-issued", "sendgrid"],
)
async def test_the_key_forwarded_on_live_requests(
    policy_set: PolicySet, records: SqliteIdempotencyRecords, policy_name: str, key: KeyIdentity,
    expected: bytes | None,
) -> None:
    policy = policy_set.by_name(policy_name)
    assert policy is not None
    inner = Inner()
    async with client(records, inner, policy, key=key) as http:
        await post(http)
    seen = [v for k, v in inner.seen_headers[0] if k == b"idempotency-key"]
    assert seen == ([] if expected is None else [expected])

