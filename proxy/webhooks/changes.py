"""Creating and changing subscriptions: every entrance (the gateway's API, the CLI, a provider's own
route) checks its input here, so a URL the SSRF guard refuses never gets in by another door.

Input (JSON): ``url`` (http/https, a public address unless allowlisted), ``events`` (names the policy
offers, ``["*"]`` or absent for all), ``description``, ``secret`` (optional: bring your own, checked
against the scheme; else one is made), ``drills`` (``{duplicate|out_of_order|wrong_signature: share}``),
and on a change ``status`` (``active``/``disabled``). Bad input is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.errors import FieldError, GatewayError
from proxy.webhooks.policy import WebhookSpec
from proxy.webhooks.ssrf import Guard, Refused
from proxy.webhooks.subscriptions import DRILLS, Subscription, Subscriptions

CREATE_FIELDS = frozenset({"url", "events", "description", "secret", "drills"})
CHANGE_FIELDS = frozenset({"url", "events", "description", "drills", "status"})


def invalid(field: str, message: str, reason: str = "validation_error") -> GatewayError:
    return GatewayError(400, "validation_error", message, reason=reason, items=(FieldError(field, message),))


def _fields(body: Any, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise GatewayError(400, "bad_request", "The body must be a JSON object.")
    if unknown := sorted(set(body) - allowed):
        raise invalid(unknown[0], f"Unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))}).")
    return body


async def checked_url(guard: Guard, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("url", "url must be an http(s) URL.")
    try:
        await guard.check(value)
    except Refused as exc:
        raise invalid("url", f"This URL cannot receive webhooks: {exc.message}.", reason=f"url_{exc.reason}") from exc
    return value


def checked_events(spec: WebhookSpec, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in value):
        raise invalid("events", 'events must be a non-empty list of event names, or ["*"] for all.')
    if "*" in value:
        return ()
    if unknown := sorted(e for e in set(value) if not spec.wants(e)):
        offered = ", ".join(sorted(spec.events or ()))
        raise invalid("events", f"Unknown event {unknown[0]!r} (this provider sends: {offered}).")
    return tuple(sorted(set(value)))


def checked_drills(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise invalid("drills", f"drills must be an object of shares between 0 and 1 ({', '.join(DRILLS)}).")
    drills: dict[str, float] = {}
    for name, share in value.items():
        if name not in DRILLS:
            raise invalid(f"drills.{name}", f"Unknown drill {name!r} (known: {', '.join(DRILLS)}).")
        if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
            raise invalid(f"drills.{name}", "A drill's share must be a number between 0 and 1.")
        drills[name] = float(share)
    return drills


def checked_description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise invalid("description", "description must be a string of at most 500 characters.")
    return value


async def create(subscriptions: Subscriptions, guard: Guard, spec: WebhookSpec, body: Any, *, workspace: str,
                 policy: str, now: float) -> Subscription:
    """A new active subscription; its secret is in the returned object (show it once)."""
    fields = _fields(body, CREATE_FIELDS)
    url = await checked_url(guard, fields.get("url"))
    events = checked_events(spec, fields.get("events"))
    description = checked_description(fields.get("description", ""))
    drills = checked_drills(fields.get("drills", {}))
    secret = fields.get("secret")
    if secret is None:
        secret = spec.scheme.new_secret()
    elif not isinstance(secret, str) or (problem := spec.scheme.check_secret(secret)):
        raise invalid("secret", f"Unusable secret: {problem if isinstance(secret, str) else 'not a string'}.")
    return subscriptions.add(workspace=workspace, policy=policy, url=url, events=events, secret=secret, now=now,
                             description=description, drills=drills)


async def change(subscriptions: Subscriptions, guard: Guard, spec: WebhookSpec, sub: Subscription, body: Any, *,
                 now: float) -> Subscription:
    fields = _fields(body, CHANGE_FIELDS)
    changes: dict[str, Any] = {}
    if "url" in fields:
        changes["url"] = await checked_url(guard, fields["url"])
    if "events" in fields:
        changes["events"] = checked_events(spec, fields["events"])
    if "description" in fields:
        changes["description"] = checked_description(fields["description"])
    if "drills" in fields:
        changes["drills"] = {**sub.drills, **checked_drills(fields["drills"])}
    if "status" in fields:
        if fields["status"] not in ("active", "disabled"):
            raise invalid("status", "status must be 'active' or 'disabled'.")
        changes["status"] = fields["status"]
        if fields["status"] == "disabled":
            changes["disabled_reason"] = "disabled through the API"
    updated = subscriptions.update(sub.id, now, **changes)
    assert updated is not None
    return updated
