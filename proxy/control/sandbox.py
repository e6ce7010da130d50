"""The sandbox's control routes under ``/_testmode/sandbox``: a clock you control, and more.

Each call is authenticated by a sandbox key (:mod:`proxy.control.auth`) and acts on exactly that key's
workspace (the one the sandbox stage answers it from). Errors are RFC 9457 problem details. README.md,
"Sandbox control", has a curl example of each.

=====================================  ==============================================================
``GET  /sandbox``                      the workspace: id, seed, its clock, row counts
``POST /sandbox/clock/advance``        ``{"seconds": N}``: every step falling due in the window runs now,
                                       in order, before the answer (``scheduler.advance``)
``POST /sandbox/inbound``              ``{"from": "+27…", "text": "STOP", "channel": "whatsapp"}``
``POST /sandbox/messages/{id}/events`` ``{"status": "failed", "reason": "…"}``: force a lifecycle event
``POST /sandbox/reset``                delete everything in the workspace
``GET|PUT|DELETE /sandbox/seed``       deterministic mode: ``{"seed": "…", "start": "2026-…Z"}``
``GET  /sandbox/events``               the workspace's outbox: events as webhooks will deliver them
=====================================  ==============================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from proxy.clock import iso_ms
from proxy.components import Components
from proxy.control.auth import authenticate
from proxy.errors import FieldError, GatewayError
from proxy.sandbox import shapes
from proxy.sandbox.workspaces import Workspace

MAX_ADVANCE = 366 * 86400.0  # a year: enough for any retry schedule, small enough to stay a number


def _json(status: int, doc: Any) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _invalid(field: str, message: str) -> GatewayError:
    return GatewayError(400, "bad_request", message, items=(FieldError(field, message),))


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, "invalid_json", "The body is not valid JSON.") from exc
    if not isinstance(doc, dict):
        raise GatewayError(400, "invalid_json", "The body must be a JSON object.")
    return doc


def routes(parts: Components) -> list[BaseRoute]:
    sandbox = parts.sandbox
    workspaces = sandbox.workspaces

    async def workspace(request: Request) -> Workspace:
        caller = await authenticate(request, parts)
        if caller.policy.sandbox is None:
            raise GatewayError(404, "not_found", f"The {caller.policy.name} policy has no sandbox.")
        return workspaces.resolve(caller.policy, caller.key.key_id, caller.workspace)

    def summary_of(ws: Workspace) -> dict[str, Any]:
        return {"workspace": ws.id, "policy": ws.policy.name, "seed": ws.seed,
                "start": iso_ms(ws.start) if ws.start is not None else None, "now": iso_ms(workspaces.now(ws)),
                "step_seconds": ws.spec.step_seconds, "counts": workspaces.counts(ws)}

    async def summary(request: Request) -> Response:
        return _json(200, summary_of(await workspace(request)))

    async def advance(request: Request) -> Response:
        ws = await workspace(request)
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_ADVANCE:
            raise _invalid("seconds", f"seconds must be a number above 0 and at most {MAX_ADVANCE:g}.")
        workspaces.ensure(ws)
        ran = await parts.scheduler.advance(ws.id, float(seconds))
        return _json(200, {"workspace": ws.id, "advanced_by": seconds, "now": iso_ms(workspaces.now(ws)),
                           "steps_run": ran})

    async def inbound(request: Request) -> Response:
        ws = await workspace(request)
        body = await _body(request)
        sender, text, channel = body.get("from"), body.get("text"), body.get("channel", "whatsapp")
        if not isinstance(sender, str) or not sender.startswith("+") or not sender[1:].isdigit() \
                or not 3 <= len(sender) <= 16:
            raise _invalid("from", "from must be an E.164 phone number, e.g. +27821234567.")
        if not isinstance(text, str) or not text or len(text) > 4096:
            raise _invalid("text", "text must be a string of 1 to 4096 characters.")
        if channel not in ("whatsapp", "sms"):
            raise _invalid("channel", "channel must be whatsapp or sms.")
        workspaces.ensure(ws)
        with parts.db.transaction() as tx:
            received = sandbox.inbound.receive(tx, ws, sender, text, channel, workspaces.now(ws))
        entry = received.suppression
        return _json(201, {"message": sandbox.messages.render(ws, received.message),
                           "suppression": shapes.suppression(ws.spec, entry) if entry is not None else None})

    async def force(request: Request) -> Response:
        ws = await workspace(request)
        body = await _body(request)
        status, reason = body.get("status"), body.get("reason")
        allowed = [*ws.spec.states[1:], "failed"]
        if status not in allowed:
            raise _invalid("status", f"status must be one of: {', '.join(allowed)}.")
        if reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= 200):
            raise _invalid("reason", "reason must be a string of 1 to 200 characters.")
        if status == "failed" and reason is None:
            reason = "forced"
        row = sandbox.messages.by_id(ws, request.path_params["id"])
        if row["direction"] != "outbound":
            raise GatewayError(409, "conflict", "Only an outbound message has a delivery lifecycle.")
        if row["status"] == status:
            raise GatewayError(409, "conflict", f"The message is already {status}.")
        changed = sandbox.lifecycle.force(ws, row, status, reason)
        if changed is None:
            raise GatewayError(409, "conflict", "The message moved on meanwhile; read it and try again.")
        return _json(200, sandbox.messages.render(ws, changed))

    async def reset(request: Request) -> Response:
        ws = workspaces.reset(await workspace(request))
        return _json(200, {**summary_of(ws), "reset": True})

    async def seed(request: Request) -> Response:
        ws = await workspace(request)
        if request.method == "DELETE":
            ws = workspaces.set_seed(ws, None)
        elif request.method == "PUT":
            body = await _body(request)
            value, start = body.get("seed"), body.get("start")
            if not isinstance(value, str) or not 0 < len(value) <= 128:
                raise _invalid("seed", "seed must be a string of 1 to 128 characters.")
            ws = workspaces.set_seed(ws, value, _instant(start) if start is not None else None)
        return _json(200, summary_of(ws))

    async def events(request: Request) -> Response:
        ws = await workspace(request)
        after, limit = request.query_params.get("after", "0"), request.query_params.get("limit", "100")
        if not after.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise _invalid("after", "after must be a whole number and limit one from 1 to 1000.")
        found = parts.outbox.list(ws.id, after=int(after), limit=int(limit), type=request.query_params.get("type"))
        # The outbox's own position is global (not the same on every run): only `next_after` carries it.
        data = [{"id": e.id, "type": e.type, "subject": e.subject, "occurred_at": iso_ms(e.occurred_at),
                 "payload": orjson.loads(e.payload)} for e in found]
        return _json(200, {"data": data, "next_after": found[-1].seq if found else int(after)})

    return [
        Route("/sandbox", summary, methods=["GET"]),
        Route("/sandbox/clock/advance", advance, methods=["POST"]),
        Route("/sandbox/inbound", inbound, methods=["POST"]),
        Route("/sandbox/messages/{id}/events", force, methods=["POST"]),
        Route("/sandbox/reset", reset, methods=["POST"]),
        Route("/sandbox/seed", seed, methods=["GET", "PUT", "DELETE"]),
        Route("/sandbox/events", events, methods=["GET"]),
    ]


def _instant(value: Any) -> float:
    """An ISO 8601 date-time with a zone (``2026-05-22T10:30:00Z``) as epoch seconds."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise _invalid("start", "start must be an ISO 8601 date-time with a zone, e.g. 2026-05-22T10:30:00Z.")
