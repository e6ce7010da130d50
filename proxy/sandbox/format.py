"""The ``sandbox:`` section of a policy, as a JSON Schema checked at load (policies/README.md, "sandbox")."""

from __future__ import annotations

from typing import Any

OPERATIONS = (
    "contacts.upsert", "contacts.list", "contacts.get", "contacts.update",
    "suppression.add", "suppression.list", "suppression.remove",
    "templates.create", "templates.list", "templates.get",
    "messages.send", "messages.list", "messages.get",
    # Answered by webhook delivery's own code (proxy/webhooks/provider.py), in the request's workspace.
    "webhooks.create", "webhooks.list", "webhooks.get", "webhooks.delete",
)
ID_KINDS = ("contact", "suppression", "template", "message", "event")
STATUS_KINDS = ("created", "updated", "ok", "queued", "validated", "removed")
EVENT_KINDS = ("sent", "delivered", "read", "failed", "received", "contact_created", "contact_updated")
RULES = ("syntax", "sequential", "adjacent", "edges")
ERROR_KEYS = (
    "contact_not_found", "contact_no_channel", "contact_conflict", "recipient_suppressed", "template_not_found",
    "template_not_approved", "template_invalid", "template_exists", "template_variables_missing",
    "template_variables_unknown", "document_required", "document_not_applicable", "message_not_found",
    "suppression_not_found", "bad_query",
)
SHAPES = ("contact", "suppression", "template", "message", "page", "validated", "removed", "event")
LOOKUPS = ("contact_by_phone", "contact_by_email", "template")

_STR = {"type": "string", "minLength": 1}


def _table(keys: tuple[str, ...], value: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """An object whose keys are exactly (or, with ``required=False``, at most) ``keys``."""
    return {"type": "object", "additionalProperties": False, "properties": dict.fromkeys(keys, value),
            **({"required": list(keys)} if required else {})}


_MAGIC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fail_at": _STR,
        "reason": _STR,
        "reply": {
            "type": "object",
            "additionalProperties": False,
            "required": ["text"],
            "properties": {"after": _STR, "delay_steps": {"type": "integer", "minimum": 0}, "text": _STR},
        },
    },
    "dependencies": {"fail_at": ["reason"], "reason": ["fail_at"]},
}

SANDBOX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["operations", "ids", "errors", "shapes", "statuses"],
    "properties": {
        "operations": {"type": "object", "additionalProperties": {"enum": list(OPERATIONS)}, "minProperties": 1},
        "ids": _table(ID_KINDS, {"type": "string", "pattern": r"^[a-z][a-z0-9]*_$"}),
        "pagination": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"default_limit": {"type": "integer", "minimum": 1},
                           "max_limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
        },
        "lifecycle": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "step_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
                "states": {"type": "array", "items": _STR, "minItems": 2, "uniqueItems": True},
                "events": _table(EVENT_KINDS, {"type": ["string", "null"]}, required=False),
            },
        },
        "magic_numbers": {
            "type": "object",
            "propertyNames": {"pattern": r"^\+[1-9][0-9]{1,14}$"},
            "additionalProperties": _MAGIC,
        },
        "inbound": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"stop_keywords": {"type": "array", "items": _STR},
                           "stop_channel": {"enum": ["all", "whatsapp", "sms", "email"]}},
        },
        "templates": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "review_steps": {"type": "integer", "minimum": 0},
                "rules": _table(RULES, {"type": "object", "additionalProperties": False, "required": ["at", "reason"],
                                        "properties": {"at": {"enum": ["create", "review", "off"]},
                                                       "reason": _STR}}, required=False),
                "rejected_names": {"type": "object", "additionalProperties": _STR},
            },
        },
        "live_lookups": _table(LOOKUPS, {"type": "string", "pattern": "^/"}),
        "statuses": _table(STATUS_KINDS, {"type": "integer", "minimum": 200, "maximum": 299}),
        "errors": _table(ERROR_KEYS, {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "code", "message"],
            "properties": {"status": {"type": "integer", "minimum": 400, "maximum": 499}, "code": _STR,
                           "message": _STR},
        }),
        "shapes": _table(SHAPES, {}),
    },
}
