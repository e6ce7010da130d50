"""Delivery: the outbox's events fanned out to subscriptions, attempted, retried, logged, replayed.

* **Fan-out** (an outbox listener, inside the append's transaction): one delivery per active
  subscription that wants the event, scheduled on the workspace's timeline (the timeline named like
  the workspace, else the gateway's clock), so no event exists without its deliveries.
* **Order per message**: a delivery for a message (the event's ``subject``) waits while an earlier one
  for the same message and subscription is open, and is scheduled when that one is delivered or gives
  up. A failing event holds back later events of its message, not other messages'.
* **An attempt** (the scheduler effect ``webhook.attempt``, at least once): POST the event's exact
  bytes, signed per the policy's scheme. 2xx within the policy's timeout is delivered; anything else is
  a failed attempt, retried after ``retry_schedule[n]`` seconds on the workspace's clock, stretched by
  up to ``jitter`` (drawn from the event id when the workspace's clock is frozen, so a deterministic
  workspace stays deterministic), and never sooner than ``Retry-After`` asks (capped at the schedule's
  longest step). A 410 disables the subscription. A replay is one fresh attempt, same event id.
* **Drills** (a subscription's shares): ``duplicate`` sends a delivered event again at once;
  ``wrong_signature`` sends a copy signed with a wrong secret before the first attempt (a receiver
  that answers it 2xx is told so in the log); ``out_of_order`` holds an event back
  :data:`OUT_OF_ORDER_DELAY` seconds, outside the per-message order, so later events overtake it.
"""

from __future__ import annotations

import random
import sqlite3

import structlog
from prometheus_client import CollectorRegistry

from proxy.clock import Clock
from proxy.policy.model import PolicySet
from proxy.scheduler import Scheduler
from proxy.settings import Settings
from proxy.store.database import Database
from proxy.store.outbox import Event, Outbox
from proxy.store.schedule import Due, Schedule
from proxy.webhooks.attempts import Attempt, Delivery, DeliveryLog
from proxy.webhooks.metrics import WebhookMetrics
from proxy.webhooks.policy import DEFAULT_SPEC, WebhookSpec
from proxy.webhooks.sender import Result, Sender
from proxy.webhooks.ssrf import Guard
from proxy.webhooks.subscriptions import DRILLS, Subscription, Subscriptions

log = structlog.get_logger("proxy.webhooks")

KIND = "webhook.attempt"
OUT_OF_ORDER_DELAY = 30.0  # past Blueticked's 5 s lifecycle steps: the next one or two events overtake it
_SYSTEM_RANDOM = random.SystemRandom()


class Webhooks:
    @classmethod
    def build(cls, settings: Settings, *, db: Database, clock: Clock, policies: PolicySet, schedule: Schedule,
              scheduler: Scheduler, outbox: Outbox, registry: CollectorRegistry) -> Webhooks:
        guard = Guard.configured(settings.webhook_allow_private, settings.webhook_hosts)
        sender = Sender(guard, concurrency=settings.webhook_concurrency, now=clock.time)
        return cls(db=db, clock=clock, policies=policies, schedule=schedule, scheduler=scheduler, outbox=outbox,
                   sender=sender, metrics=WebhookMetrics(registry))

    def __init__(self, *, db: Database, clock: Clock, policies: PolicySet, schedule: Schedule, scheduler: Scheduler,
                 outbox: Outbox, sender: Sender, metrics: WebhookMetrics) -> None:
        self.db = db
        self.clock = clock
        self.policies = policies
        self.schedule = schedule
        self.scheduler = scheduler
        self.outbox = outbox
        self.sender = sender
        self.guard = sender.guard
        self.subscriptions = Subscriptions(db)
        self.log = DeliveryLog(db)
        self.metrics = metrics
        metrics.depth = self.log.open_count
        outbox.subscribe(self.fan_out)
        scheduler.effect(KIND, self.attempt)

    async def start(self) -> None:
        await self.sender.start()

    async def close(self) -> None:
        await self.sender.close()

    def spec(self, policy: str) -> WebhookSpec:
        found = self.policies.by_name(policy)
        return (found.webhooks if found is not None else None) or DEFAULT_SPEC

    def timeline(self, workspace: str) -> str | None:
        return workspace if self.schedule.timeline(workspace) is not None else None

    def _random(self, timeline: str | None, *seed: object) -> random.Random:
        found = self.schedule.timeline(timeline) if timeline else None
        if found is not None and found.frozen_at is not None:
            return random.Random("|".join(map(str, seed)))  # str seeds hash with SHA-512: the same in every process
        return _SYSTEM_RANDOM

    def _schedule(self, delivery: int, due: float, timeline: str | None) -> None:
        self.schedule.add(KIND, {"d": delivery}, due=due, timeline=timeline)
        now = self.schedule.now(timeline)
        if timeline is not None and due <= now:  # a frozen timeline's items wait for advance; this one is due now
            self.schedule.release_due_on(timeline, due, self.clock.time())

    # ------------------------------------------------------------------------------------ fan-out

    def fan_out(self, tx: sqlite3.Connection, event: Event) -> None:
        """The outbox listener: one delivery per active subscription that wants ``event``."""
        subscriptions = [s for s in self.subscriptions.active(event.workspace) if s.wants(event.type)]
        if not subscriptions:
            return
        timeline = self.timeline(event.workspace)
        now = self.schedule.now(timeline)
        for sub in subscriptions:
            rng = self._random(timeline, event.id, sub.id, "drills")
            drills = frozenset(name for name in DRILLS if rng.random() < sub.drills.get(name, 0.0))
            due, state = event.occurred_at, "pending"
            if "out_of_order" in drills:
                due += OUT_OF_ORDER_DELAY
            elif event.subject is not None and self.log.in_line(sub.id, event.subject):
                state = "waiting"
            delivery = self.log.add(workspace=event.workspace, subscription=sub.id, event=event.id,
                                    event_seq=event.seq, event_type=event.type, subject=event.subject,
                                    trigger="event", drills=drills, state=state, now=now)
            if state == "pending":
                self._schedule(delivery, due, timeline)
        self.scheduler.wake()

    def reset_workspace(self, workspace: str) -> None:
        """A sandbox reset dropped the workspace's events and timeline: its open deliveries end (failed),
        so none waits forever behind a message id that a deterministic workspace will issue again.
        Subscriptions stay: they are the workspace's configuration, not its data."""
        self.log.fail_workspace(workspace, "workspace reset", self.clock.time())

    def replay(self, workspace: str, pairs: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
        """A fresh delivery (one attempt, same event id) of each (event, subscription); what was scheduled."""
        timeline = self.timeline(workspace)
        now = self.schedule.now(timeline)
        scheduled: list[tuple[int, str, str]] = []
        with self.db.transaction():
            for event_id, sub_id in pairs:
                event = self.outbox.get(event_id)
                sub = self.subscriptions.get(sub_id, workspace)
                if event is None or event.workspace != workspace or sub is None or sub.status != "active":
                    continue
                delivery = self.log.add(workspace=workspace, subscription=sub.id, event=event.id,
                                        event_seq=event.seq, event_type=event.type, subject=event.subject,
                                        trigger="replay", drills=frozenset(), state="pending", now=now)
                self._schedule(delivery, now, timeline)
                scheduled.append((delivery, event.id, sub.id))
        self.scheduler.wake()
        return scheduled

    # ------------------------------------------------------------------------------------ attempts

    async def attempt(self, item: Due) -> float | None:
        """The scheduler effect: one attempt of one delivery; the next due time, or None when finished."""
        delivery = self.log.get(int(item.payload["d"]))
        if delivery is None or delivery.state != "pending":
            return None  # finished meanwhile (delivered before a crash, or its subscription disabled)
        sub = self.subscriptions.get(delivery.subscription)
        event = self.outbox.get(delivery.event)
        timeline = self.timeline(delivery.workspace)
        if sub is None or event is None or sub.status != "active":
            with self.db.transaction():
                self._finish(delivery, "failed", delivery.attempts, timeline, "subscription removed or disabled")
            return None
        spec = self.spec(sub.policy)
        number = delivery.attempts + 1
        drilled = delivery.trigger == "event" and number == 1
        records: list[Attempt] = []
        if drilled and "wrong_signature" in delivery.drills:
            records.append((await self._post(delivery, sub, event, spec, number, "wrong_signature"))[0])
        record, result = await self._post(delivery, sub, event, spec, number, None)
        records.append(record)
        if result.delivered and drilled and "duplicate" in delivery.drills:
            records.append((await self._post(delivery, sub, event, spec, number, "duplicate"))[0])
        with self.db.transaction():
            for record in records:
                self.log.record(record)
            return self._after(delivery, sub, spec, number, result, timeline)

    async def _post(self, delivery: Delivery, sub: Subscription, event: Event, spec: WebhookSpec, number: int,
                    drill: str | None) -> tuple[Attempt, Result]:
        timeline = self.timeline(delivery.workspace)
        at = self.schedule.now(timeline)
        # The gateway's clock, not the workspace's: receivers compare webhook-timestamp with their own clock.
        secret = spec.scheme.new_secret() if drill == "wrong_signature" else sub.secret.reveal()
        signing = spec.scheme.headers(secret, event.id, event.type, int(self.clock.time()), event.payload)
        result = await self.sender.post(sub.url, event.payload, {"content-type": "application/json", **signing},
                                        spec.timeout)
        self.metrics.attempt(result.kind if drill is None else f"drill_{drill}", result.latency)
        error = result.error
        if drill == "wrong_signature" and result.delivered:
            error = "the receiver accepted a delivery signed with a wrong secret"
        return Attempt(delivery.workspace, sub.id, delivery.id, event.id, event.type, number, delivery.trigger, drill,
                       at, sub.url, result.address, result.status, round(result.latency * 1000, 3),
                       "delivered" if result.delivered else "failed", error,
                       signing.get(spec.scheme.signature_header), result.response), result

    def _after(self, delivery: Delivery, sub: Subscription, spec: WebhookSpec, number: int, result: Result,
               timeline: str | None) -> float | None:
        if result.delivered:
            self._finish(delivery, "delivered", number, timeline, None)
            return None
        if result.status == 410:  # Gone: the receiver asks for no more (Standard Webhooks, Svix)
            now = self.schedule.now(timeline)
            self.subscriptions.disable(sub.id, "the endpoint answered 410 Gone", now)
            self.log.fail_open(sub.id, "subscription disabled (410 Gone)", now)
            self._finish(delivery, "failed", number, timeline, "410 Gone: subscription disabled")
            log.info("webhook_subscription_disabled", subscription=sub.id, reason="410")
            return None
        if delivery.trigger == "replay" or number >= len(spec.retry_schedule):
            self._finish(delivery, "failed", number, timeline, result.error)
            return None
        delay = spec.retry_schedule[number]
        delay *= 1 + self._random(timeline, delivery.event, sub.id, number).uniform(0, spec.jitter)
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, max(spec.retry_schedule)))
        self.log.set_state(delivery.id, "pending", attempts=number, error=result.error)
        return self.schedule.now(timeline) + delay

    def _finish(self, delivery: Delivery, state: str, attempts: int, timeline: str | None, error: str | None) -> None:
        """Close a delivery and let the next event of its message go (per-message order)."""
        self.log.set_state(delivery.id, state, now=self.schedule.now(timeline), attempts=attempts, error=error)
        self.metrics.finished(state)
        if delivery.subject is None or delivery.trigger != "event" or "out_of_order" in delivery.drills:
            return
        successor = self.log.next_waiting(delivery.subscription, delivery.subject)
        if successor is not None:
            self.log.set_state(successor.id, "pending")
            self._schedule(successor.id, self.schedule.now(timeline), timeline)
            self.scheduler.wake()
