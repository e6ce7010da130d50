"""``/_testmode/webhooks…``: subscriptions, the attempt log and replay, for the caller's workspace.

Every route takes the workspace's sandbox key (:func:`proxy.control.auth.authenticate`) and sees only
that workspace; another workspace's subscription or event is a 404, never a 403 that would confirm it
exists. Answers are JSON; errors are problem details (RFC 9457).

=======  ===========================================  =================================================
POST     /_testmode/webhooks                          subscribe (201; the secret is shown this once)
GET      /_testmode/webhooks                          list subscriptions
GET      /_testmode/webhooks/{id}                     one subscription
PATCH    /_testmode/webhooks/{id}                     url, events, description, drills, status
DELETE   /_testmode/webhooks/{id}                     unsubscribe
GET      /_testmode/webhooks/attempts                 the attempt log, newest first (event, subscription,
                                                      outcome, limit, before filters)
POST     /_testmode/webhooks/events/{event}/replay    a fresh attempt of one event (202)
POST     /_testmode/webhooks/replay                   a fresh attempt of every failed event since a time
=======  ===========================================  =================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from proxy.components import Components
from proxy.control.auth import Caller, authenticate
from proxy.errors import GatewayError
from proxy.webhooks import changes
from proxy.webhooks.subscriptions import Subscription

MAX_BODY = 64 * 1024


def workspace_of(caller: Caller) -> str:
    """The workspace a sandbox key acts on, named as the sandbox names it (its timeline and outbox use the
    same id): ``<policy>/ws:<name>`` for a key bound to a named workspace, else ``<policy>/<key id>``, the
    key's own. The CLI takes the same id (``--workspace``)."""
    policy = caller.policy.name
    return f"{policy}/ws:{caller.workspace}" if caller.workspace else f"{policy}/{caller.key.key_id}"


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise GatewayError(413, "payload_too_large", f"The body is larger than {MAX_BODY} bytes.")
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, "invalid_json", f"The body is not JSON: {exc}.") from exc


def _since(value: Any) -> float:
    """Unix seconds, or an ISO 8601 time with its offset (``2026-01-01T00:00:00Z``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise changes.invalid("since", "since must be Unix seconds or an ISO 8601 time with an offset.")


class WebhookRoutes:
    def __init__(self, parts: Components) -> None:
        self.parts = parts
        self.hooks = parts.webhooks

    async def _caller(self, request: Request) -> tuple[Caller, str]:
        caller = await authenticate(request, self.parts)
        return caller, workspace_of(caller)

    async def _subscription(self, request: Request) -> tuple[Caller, Subscription]:
        caller, workspace = await self._caller(request)
        sub = self.hooks.subscriptions.get(request.path_params["id"], workspace)
        if sub is None:
            raise GatewayError(404, "not_found", "No such webhook subscription in this workspace.")
        return caller, sub

    def _now(self, workspace: str) -> float:
        return self.hooks.schedule.now(self.hooks.timeline(workspace))

    async def create(self, request: Request) -> Response:
        caller, workspace = await self._caller(request)
        policy = caller.policy.name
        sub = await changes.create(self.hooks.subscriptions, self.hooks.guard, self.hooks.spec(policy),
                                   await _body(request), workspace=workspace, policy=policy, now=self._now(workspace))
        return _json(sub.public(with_secret=True), 201)

    async def listed(self, request: Request) -> Response:
        _, workspace = await self._caller(request)
        return _json({"object": "list", "data": [s.public() for s in self.hooks.subscriptions.listed(workspace)]})

    async def one(self, request: Request) -> Response:
        _, sub = await self._subscription(request)
        return _json(sub.public())

    async def change(self, request: Request) -> Response:
        _, sub = await self._subscription(request)
        now = self._now(sub.workspace)
        updated = await changes.change(self.hooks.subscriptions, self.hooks.guard, self.hooks.spec(sub.policy), sub,
                                       await _body(request), now=now)
        if updated.status == "disabled" and sub.status == "active":
            self.hooks.log.fail_open(sub.id, "subscription disabled", now)
        return _json(updated.public())

    async def remove(self, request: Request) -> Response:
        _, sub = await self._subscription(request)
        self.hooks.log.fail_open(sub.id, "subscription removed", self._now(sub.workspace))
        self.hooks.subscriptions.remove(sub.id)
        return _json({"id": sub.id, "object": "webhook_subscription", "deleted": True})

    async def attempts(self, request: Request) -> Response:
        _, workspace = await self._caller(request)
        query = request.query_params
        try:
            limit = min(max(int(query.get("limit", "100")), 1), 1000)
            before = int(query["before"].removeprefix("att_")) if "before" in query else None
        except ValueError as exc:
            raise changes.invalid("limit", "limit must be a number and before an attempt id (att_…).") from exc
        found = self.hooks.log.attempts(workspace, event=query.get("event"), subscription=query.get("subscription"),
                                        outcome=query.get("outcome"), before=before, limit=limit)
        cursor = f"att_{found[-1].id}" if len(found) == limit else None
        return _json({"object": "list", "data": [a.public() for a in found], "next_before": cursor})

    async def replay_event(self, request: Request) -> Response:
        _, workspace = await self._caller(request)
        body = await _body(request)
        event = self.hooks.outbox.get(request.path_params["event"])
        if event is None or event.workspace != workspace:
            raise GatewayError(404, "not_found", "No such event in this workspace.")
        wanted = body.get("subscription") if isinstance(body, dict) else None
        subs = [s for s in self.hooks.subscriptions.active(workspace)
                if (s.id == wanted if wanted else s.wants(event.type))]
        if wanted and not subs:
            raise GatewayError(404, "not_found", "No such active webhook subscription in this workspace.")
        return self._replayed(self.hooks.replay(workspace, [(event.id, s.id) for s in subs]))

    async def replay_failed(self, request: Request) -> Response:
        _, workspace = await self._caller(request)
        body = await _body(request)
        if not isinstance(body, dict) or "since" not in body:
            raise changes.invalid("since", "Give since: the time (Unix seconds or ISO 8601) to replay failures from.")
        wanted = body.get("subscription")
        if wanted is not None and not isinstance(wanted, str):
            raise changes.invalid("subscription", "subscription must be a subscription id.")
        pairs = self.hooks.log.failed_since(workspace, _since(body["since"]), wanted)
        return self._replayed(self.hooks.replay(workspace, pairs))

    @staticmethod
    def _replayed(scheduled: list[tuple[int, str, str]]) -> Response:
        return _json({"object": "list", "data": [
            {"delivery": f"dlv_{delivery}", "event": event, "subscription": sub} for delivery, event, sub in scheduled
        ]}, 202)


def routes(parts: Components) -> list[BaseRoute]:
    r = WebhookRoutes(parts)
    return [
        Route("/webhooks", r.create, methods=["POST"]),
        Route("/webhooks", r.listed, methods=["GET"]),
        Route("/webhooks/attempts", r.attempts, methods=["GET"]),
        Route("/webhooks/replay", r.replay_failed, methods=["POST"]),
        Route("/webhooks/events/{event}/replay", r.replay_event, methods=["POST"]),
        Route("/webhooks/{id}", r.one, methods=["GET"]),
        Route("/webhooks/{id}", r.change, methods=["PATCH"]),
        Route("/webhooks/{id}", r.remove, methods=["DELETE"]),
    ]
