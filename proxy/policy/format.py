"""The policy file format, as a JSON Schema checked at load (documented in policies/README.md)."""

from __future__ import annotations

from typing import Any

from proxy.policy import idempotency

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": _STR}
_HEADERS = {"type": "object", "additionalProperties": _STR}
_PREFIXES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

_RESPONSE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "when": _STR,
        "status": {"type": "integer", "minimum": 200, "maximum": 599},
        "headers": _HEADERS,
        "data": {},
        "body": {},
        "empty": {"type": "boolean"},
    },
    "required": ["status"],
}

# A provider's published description is silent on a status, or wrong at some JSON paths (proxy/policy/contract.py).
_PROVIDER_NOTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"silent": _STR, "differs": _STR, "at": _STR_LIST},
    "oneOf": [{"required": ["silent"], "not": {"required": ["at"]}}, {"required": ["differs", "at"]}],
}
_STATUS = r"^[1-5][0-9][0-9]$"
_DOCUMENTED: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "description": _STR,
        "schema": {"type": ["object", "boolean"]},
        "headers": _STR_LIST,
        "provider": _PROVIDER_NOTE,
    },
}
_CONTRACT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "source": _STR,
        "drift_sample_rate": {"type": "number", "minimum": 0, "maximum": 1},
        "errors": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "schema": {"type": ["object", "boolean"]},
                "provider": {"type": "object", "propertyNames": {"pattern": _STATUS},
                             "additionalProperties": _PROVIDER_NOTE},
            },
        },
    },
}

_ROUTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "method", "path", "scope"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9_.-]+$"},
        "method": {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]},
        "path": {"type": "string", "pattern": r"^/"},
        "scope": _STR,
        "summary": _STR,
        "max_body_bytes": {"type": "integer", "minimum": 0},
        "schema": {"type": ["object", "boolean"]},
        "rules": {"type": "array", "items": {"type": "object"}},
        "test_response": {
            "oneOf": [_RESPONSE, {"type": "array", "items": _RESPONSE, "minItems": 1}],
        },
        "responses": {"type": "object", "propertyNames": {"pattern": _STATUS}, "additionalProperties": _DOCUMENTED},
        # Why a route has no test-mode answer: a test request to it is 404 test_mode_unsupported (issue 14).
        "refused_in_test_mode": _STR,
    },
}

_FLAG_NAMES = {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"}}

_TRIGGER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "body": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"},
        "key_prefix": {"type": "string", "minLength": 1},
        "require_when_parent_present": {"type": "boolean"},
        "message": _STR,
        "field": _STR,  # the field named in a flag error (default: where the shape went wrong)
    },
    "oneOf": [{"required": ["body"]}, {"required": ["key_prefix"]}],
}

POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},  # free space for YAML anchors and notes
    "required": ["version", "name", "upstream", "keys", "dialect", "test_mode", "routes"],
    "properties": {
        "version": {"const": 1},
        "name": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": _STR,
        "webhooks": {"type": "object"},  # its own compile function checks the inside (proxy/webhooks/policy.py)
        "upstream": {
            "type": "object",
            "additionalProperties": False,
            "required": ["base_url"],
            "properties": {
                "base_url": {"type": "string", "pattern": r"^https?://"},
                "connect_timeout": {"type": "number", "exclusiveMinimum": 0},
                "total_timeout": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "prefixes": {"type": "array", "items": {"type": "string", "pattern": r"^(/[A-Za-z0-9_.~-]+)*$"}},
        "keys": {
            "type": "object",
            "additionalProperties": False,
            "required": ["header"],
            "properties": {
                "header": _STR,
                "scheme": {"enum": ["raw", "bearer"]},
                "conflicting_headers": _STR_LIST,
                "issued_prefix": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["live", "test"],
                    "properties": {"live": _STR, "test": _STR},
                },
                "shapes": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"live": _PREFIXES, "test": _PREFIXES, "pattern": {"type": "string", "minLength": 1}},
                    "anyOf": [{"required": ["live"]}, {"required": ["test"]}],
                },
                "passthrough": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["verify_path"],
                    "properties": {
                        "verify_method": {"enum": ["GET", "HEAD"]},
                        "verify_path": {"type": "string", "pattern": "^/"},
                        "ttl_seconds": {"type": "number", "minimum": 0},
                        "negative_ttl_seconds": {"type": "number", "minimum": 0},
                        "scopes": _STR_LIST,
                    },
                },
            },
        },
        "dialect": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error"],
            "properties": {
                "field_style": {"enum": ["dot", "bracket"]},
                "error": {},
                "codes": {"type": "object", "additionalProperties": _STR},
                "messages": {"type": "object", "additionalProperties": _STR},
                "headers": {
                    "type": "object",
                    "description": "extra headers on errors, keyed by status code or 'default'",
                    "additionalProperties": _HEADERS,
                },
            },
        },
        "test_mode": {
            "type": "object",
            "additionalProperties": False,
            "required": ["triggers"],
            "properties": {
                "triggers": {"type": "array", "items": _TRIGGER, "minItems": 1},
                "misplaced": {
                    "type": "object",
                    "additionalProperties": False,
                    # Added to the names derived from the body triggers; matched folded (proxy/policy/flagnames.py).
                    "properties": {"headers": _FLAG_NAMES, "query": _FLAG_NAMES},
                },
                "request_id_prefix": _STR,
                "response_headers": _HEADERS,
                "envelope": {},
            },
        },
        "live": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"request_id_prefix": _STR, "validate": {"type": "boolean"}},
        },
        "unmatched_scopes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"read": _STR, "write": _STR},
        },
        "idempotency": idempotency.SCHEMA,
        "schemas": {"type": "object", "additionalProperties": {"type": ["object", "boolean"]}},
        "contract": _CONTRACT,
        "routes": {"type": "array", "items": _ROUTE},
        "sandbox": {"type": "object"},  # checked and compiled by proxy/sandbox/spec.py
    },
}
