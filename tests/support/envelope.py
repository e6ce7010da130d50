"""Sent's response envelope as a client sees it: one place that checks its shape and its types.

``{"success": bool, "data": {...}|null, "error": {...}|null, "meta": {"request_id", "timestamp",
"version": "v3"}}`` on every JSON response (shared/reference/provider-clients.md), with the
``X-Request-Id`` header equal to ``meta.request_id``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
TEST_REQUEST_ID = re.compile(r"^req_test_[0-9a-f]{24}$")
LIVE_REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The parsed envelope, after checking what every Sent response has in common."""
    assert response.headers.get("content-type") == "application/json", response.headers
    doc = response.json()
    assert isinstance(doc, dict)
    assert set(doc) == {"success", "data", "error", "meta"}, doc
    assert isinstance(doc["success"], bool)
    meta = doc["meta"]
    assert set(meta) == {"request_id", "timestamp", "version"}, meta
    assert meta["version"] == "v3"
    assert ISO_UTC.match(meta["timestamp"]), meta
    assert meta["request_id"] == response.headers["x-request-id"]
    return doc


def simulated(response: httpx.Response, status: int) -> dict[str, Any]:
    """A synthesized test-mode answer: the status, ``X-Test-Mode: true``, a ``req_test_`` id, the data."""
    assert response.status_code == status, response.text
    assert response.headers.get("x-test-mode") == "true"
    assert TEST_REQUEST_ID.match(response.headers["x-request-id"])
    doc = envelope(response)
    assert doc["success"] is True
    assert doc["error"] is None
    assert isinstance(doc["data"], dict)
    data: dict[str, Any] = doc["data"]
    return data


def error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """A gateway-made error in Sent's dialect: the status, ``success: false``, a typed ``error`` object."""
    assert response.status_code == status, response.text
    doc = envelope(response)
    assert doc["success"] is False
    assert doc["data"] is None
    err = doc["error"]
    assert set(err) == {"code", "message", "details", "doc_url", "outcome"}, err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["doc_url"], str)
    assert err["outcome"] in (None, "not_sent", "unknown")
    details = err["details"]
    assert details is None or (
        isinstance(details, dict)
        and all(isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
                for k, v in details.items())
    ), details
    if code is not None:
        assert err["code"] == code, err
    result: dict[str, Any] = err
    return result
