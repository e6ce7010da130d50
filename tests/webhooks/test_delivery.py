"""Delivery against a real receiver on 127.0.0.1: signatures, retries on the workspace's clock, order, 410."""

from __future__ import annotations

import standardwebhooks

from tests.support.receiver import Answer, Receiver
from tests.webhooks.harness import Harness, blueticked_valid


async def test_an_event_reaches_each_subscription_that_wants_it_signed_with_its_secret(
    hooks: Harness, recv: Receiver,
) -> None:
    wanted = hooks.subscribe(recv.url, events=("message.sent",))
    everything = hooks.subscribe(recv.url.replace("/hooks", "/all"))
    hooks.subscribe(recv.url.replace("/hooks", "/other"), events=("message.failed",))
    hooks.subscribe(recv.url.replace("/hooks", "/elsewhere"), workspace="ws_other")
    disabled = hooks.subscribe(recv.url.replace("/hooks", "/off"))
    hooks.webhooks.subscriptions.disable(disabled.id, "by hand", hooks.clock.time())
    event = hooks.emit("message.sent")
    got = await recv.until(2)
    await hooks.idle()
    assert sorted(d.path for d in recv.deliveries()) == ["/all", "/hooks"]
    by_path = {d.path: d for d in got}
    for path, sub in (("/hooks", wanted), ("/all", everything)):
        delivery = by_path[path]
        assert delivery.body == event.payload  # the outbox's exact bytes
        assert delivery.headers["x-blueticked-event"] == "message.sent"
        assert delivery.headers["content-type"] == "application/json"
        assert blueticked_valid(delivery, sub.secret.reveal())
        assert not blueticked_valid(delivery, everything.secret.reveal() if sub is wanted else wanted.secret.reveal())
    [attempt] = hooks.attempts(subscription=wanted.id)
    assert (attempt.status, attempt.outcome, attempt.event, attempt.address) == (200, "delivered", event.id,
                                                                                 "127.0.0.1")
    assert attempt.signature == by_path["/hooks"].headers["x-blueticked-signature"]


async def test_standard_webhooks_is_the_default_scheme_and_verifies_with_its_library(
    hooks: Harness, recv: Receiver,
) -> None:
    sub = hooks.subscribe(recv.url, policy="sendgrid")  # no webhooks section: Standard Webhooks v1
    event = hooks.emit("message.delivered")
    [delivery] = await recv.until(1)
    assert delivery.headers["webhook-id"] == event.id
    assert standardwebhooks.Webhook(sub.secret.reveal()).verify(delivery.body, delivery.headers)["test"] is True


async def test_a_receiver_failing_three_times_gets_it_on_the_fourth_attempt_as_the_clock_moves(
    hooks: Harness, recv: Receiver,
) -> None:
    sub = hooks.subscribe(recv.url)
    recv.script = [Answer(500), Answer(503), Answer(502)]
    event = hooks.emit("message.sent")
    await recv.until(1)
    await hooks.idle()
    # Svix's schedule, each step stretched by at most 10 % jitter: 5 s, 5 min, 30 min.
    for step, seen in ((5, 2), (300, 3), (1800, 4)):
        await hooks.advance(step * 0.89)
        assert len(recv.deliveries()) == seen - 1, f"attempt {seen} came before its time"
        await hooks.advance(step * 0.22)
        assert len(recv.deliveries()) == seen
    attempts = hooks.attempts(event=event.id)
    assert [a.status for a in attempts] == [500, 503, 502, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert [a.outcome for a in attempts] == ["failed"] * 3 + ["delivered"]
    assert {d.event_id for d in recv.deliveries()} == {event.id}
    assert all(blueticked_valid(d, sub.secret.reveal()) for d in recv.deliveries())
    assert hooks.webhooks.log.open_count() == 0


async def test_retry_after_is_honoured(hooks: Harness, recv: Receiver) -> None:
    hooks.subscribe(recv.url)
    recv.script = [Answer(429, {"Retry-After": "120"})]
    hooks.emit("message.sent")
    await recv.until(1)
    await hooks.idle()
    await hooks.advance(60)  # the schedule says 5 s; the receiver asked for 120
    assert len(recv.deliveries()) == 1
    await hooks.advance(61)
    assert len(recv.deliveries()) == 2


async def test_attempts_run_out_after_the_schedule(hooks: Harness, recv: Receiver) -> None:
    hooks.subscribe(recv.url)
    recv.default = Answer(500)
    event = hooks.emit("message.sent")
    await recv.until(1)
    for _ in range(10):
        await hooks.advance(36000 * 1.1)
    assert len(recv.deliveries()) == 8  # Svix's schedule: 8 attempts
    assert hooks.webhooks.log.failed_since(hooks.workspace, 0) == [(event.id, hooks.attempts()[0].subscription)]


async def test_410_disables_the_subscription(hooks: Harness, recv: Receiver) -> None:
    sub = hooks.subscribe(recv.url)
    recv.script = [Answer(410)]
    hooks.emit("message.sent", subject="msg_a")
    await recv.until(1)
    await hooks.idle()
    assert hooks.webhooks.subscriptions.get(sub.id).status == "disabled"
    hooks.emit("message.delivered", subject="msg_a")
    await hooks.advance(10)
    assert len(recv.deliveries()) == 1
    assert hooks.webhooks.log.open_count() == 0


async def test_a_timeout_and_a_redirect_are_failed_attempts(hooks: Harness, recv: Receiver) -> None:
    hooks.subscribe(recv.url)
    recv.script = [Answer(200, delay=1.5), Answer(302, {"Location": "http://169.254.169.254/latest"})]
    hooks.emit("message.sent")
    await recv.until(1)
    await hooks.idle()
    await hooks.advance(6)
    first, second = hooks.attempts()
    assert (first.status, first.outcome) == (None, "failed")
    assert first.error is not None and "no answer within 1 s" in first.error
    assert (second.status, second.outcome, second.error) == (302, "failed", "redirects are not followed")
    assert len(recv.deliveries()) == 2  # nothing followed the Location


async def test_events_of_one_message_arrive_in_order_even_when_the_first_is_retried(
    hooks: Harness, recv: Receiver,
) -> None:
    hooks.subscribe(recv.url)
    recv.script = [Answer(500)]
    sent = hooks.emit("message.sent", subject="msg_a")
    await recv.until(1)
    await hooks.idle()
    delivered = hooks.emit("message.delivered", subject="msg_a")
    read = hooks.emit("message.read", subject="msg_a")
    other = hooks.emit("message.sent", subject="msg_b")  # another message is not held back
    await recv.until(2)
    await hooks.idle()
    assert [d.event_id for d in recv.deliveries()] == [sent.id, other.id]
    await hooks.advance(6)
    await recv.until(5)
    assert [d.event_id for d in recv.deliveries()] == [sent.id, other.id, sent.id, delivered.id, read.id]


async def test_a_workspace_reset_ends_its_open_deliveries(hooks: Harness, recv: Receiver) -> None:
    hooks.subscribe(recv.url)
    recv.script = [Answer(500)]
    hooks.emit("message.sent", subject="msg_a")
    await recv.until(1)
    await hooks.idle()
    hooks.emit("message.delivered", subject="msg_a")  # waits behind the failed one
    assert hooks.webhooks.log.open_count() == 2
    hooks.webhooks.reset_workspace(hooks.workspace)
    assert hooks.webhooks.log.open_count() == 0
    fresh = hooks.emit("message.sent", subject="msg_a")  # a deterministic workspace issues the same ids again
    got = await recv.until(2)
    assert got[-1].event_id == fresh.id
