"""Helpers for end-to-end webhook tests: the control API with one sandbox key, and events put into a
running gateway's outbox from outside (until a flow of the sandbox makes them, this is how a test can
make an event whose delivery the gateway process then carries out)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from proxy.components import build
from proxy.settings import Settings
from proxy.store.outbox import Event
from tests.support.servers import POLICIES


class WebhookApi:
    """``/_testmode/webhooks…`` with one sandbox key."""

    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http = http
        self.headers = {"authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.http.request(method, "/_testmode/webhooks" + path, headers=self.headers, json=json,
                                 params=params or None)

    def subscribe(self, url: str, **fields: Any) -> dict[str, Any]:
        response = self.call("POST", "", {"url": url, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def attempts(self, **filters: Any) -> list[dict[str, Any]]:
        """Every attempt (oldest first)."""
        response = self.call("GET", "/attempts", limit=1000, **filters)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return list(reversed(data))

    def wait_attempts(self, count: int, within: float = 15.0, **filters: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            found = self.attempts(**filters)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def inject(state_dir: Path, workspace: str, events: list[tuple[str, str | None]]) -> list[Event]:
    """Append ``(type, subject)`` events to the outbox of the gateway whose store is ``state_dir``, with the
    webhook fan-out running in this process's transaction, as the sandbox does in the gateway's; the
    gateway's scheduler finds the scheduled deliveries on its next look (within a second)."""
    parts = build(Settings(policies_dir=POLICIES, state_dir=state_dir))
    try:
        appended = []
        with parts.db.transaction():
            for event_type, subject in events:
                event_id = "evt_" + os.urandom(10).hex()
                payload = orjson.dumps({"id": event_id, "event": event_type, "test": True,
                                        "data": {"message_id": subject}})
                appended.append(parts.outbox.append(Event(event_id, workspace, event_type, subject,
                                                          parts.schedule.now(workspace), payload)))
        return appended
    finally:
        parts.db.close()
