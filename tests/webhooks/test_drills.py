"""Failure drills: duplicates, out-of-order delivery and wrong signatures on a share of deliveries."""

from __future__ import annotations

from collections import Counter

from tests.support.receiver import Answer, Receiver
from tests.webhooks.harness import Harness, blueticked_valid


async def test_duplicate_delivers_the_same_event_twice_with_the_same_id(hooks: Harness, recv: Receiver) -> None:
    sub = hooks.subscribe(recv.url, drills={"duplicate": 1.0})
    event = hooks.emit("message.sent")
    got = await recv.until(2)
    await hooks.idle()
    assert [d.event_id for d in got] == [event.id, event.id]
    assert all(blueticked_valid(d, sub.secret.reveal()) for d in got)
    assert [a.drill for a in hooks.attempts()] == [None, "duplicate"]


async def test_wrong_signature_sends_a_forged_copy_first(hooks: Harness, recv: Receiver) -> None:
    sub = hooks.subscribe(recv.url, drills={"wrong_signature": 1.0})
    recv.script = [Answer(401)]  # a receiver that verifies rejects the forgery
    event = hooks.emit("message.sent")
    forged, real = await recv.until(2)
    await hooks.idle()
    assert forged.event_id == real.event_id == event.id and forged.body == real.body
    assert not blueticked_valid(forged, sub.secret.reveal())
    assert blueticked_valid(real, sub.secret.reveal())
    drill, delivered = hooks.attempts()
    assert (drill.drill, drill.status, drill.error) == ("wrong_signature", 401, "HTTP 401")
    assert (delivered.drill, delivered.outcome) == (None, "delivered")
    assert hooks.webhooks.log.open_count() == 0  # the drill's 401 is not the delivery's failure


async def test_a_receiver_that_accepts_a_forgery_is_told_so(hooks: Harness, recv: Receiver) -> None:
    hooks.subscribe(recv.url, drills={"wrong_signature": 1.0})
    hooks.emit("message.sent")
    await recv.until(2)
    await hooks.idle()
    drill = hooks.attempts()[0]
    assert drill.error == "the receiver accepted a delivery signed with a wrong secret"


async def test_out_of_order_lets_later_events_of_the_message_overtake(hooks: Harness, recv: Receiver) -> None:
    sub = hooks.subscribe(recv.url, drills={"out_of_order": 1.0})
    sent = hooks.emit("message.sent", subject="msg_a")
    hooks.webhooks.subscriptions.update(sub.id, hooks.clock.time(), drills={})
    delivered = hooks.emit("message.delivered", subject="msg_a")
    await recv.until(1)
    await hooks.idle()
    assert [d.event_id for d in recv.deliveries()] == [delivered.id]
    await hooks.advance(31)
    assert [d.event_id for d in recv.deliveries()] == [delivered.id, sent.id]


async def test_a_share_is_drawn_per_delivery_and_the_same_on_a_frozen_clock(hooks: Harness, recv: Receiver) -> None:
    frozen = "ws_frozen"
    hooks.parts.schedule.ensure_timeline(frozen, frozen_at=hooks.clock.time())
    hooks.subscribe(recv.url, drills={"duplicate": 0.3}, workspace=frozen)
    for n in range(100):
        hooks.emit("message.sent", subject=f"msg_{n}", workspace=frozen, event_id=f"evt_fixed_{n}")
    await recv.until(100)
    await hooks.idle()
    copies = Counter(d.event_id for d in recv.deliveries())
    assert set(copies) == {f"evt_fixed_{n}" for n in range(100)}
    twice = sorted(e for e, n in copies.items() if n == 2)
    assert 15 <= len(twice) <= 45
    # Deterministic: the draw depends only on the event and the subscription when the clock is frozen.
    webhooks = hooks.webhooks
    assert webhooks._random(frozen, "evt_1", "wh_1").random() == webhooks._random(frozen, "evt_1", "wh_1").random()
