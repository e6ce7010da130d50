"""Helpers for end-to-end sandbox tests: the Blueticked stand-in process, a client that speaks
Blueticked's API and the sandbox control surface with one sandbox key, and a read-only look at the
gateway's store."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import Provider, _wait_ready, free_port

API = "/blueticked"  # the Blueticked pack's mount prefix (policies/blueticked.yaml)


class BluetickedStandIn(Provider):
    """tests/support/blueticked.py in its own process: records every request, answers the lookups."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn([sys.executable, "-m", "tests.support.blueticked", "--port", str(self.port)], None, log_file)
        _wait_ready(self.url + "/__records", self.process, log_file)
        self._control = httpx.Client(base_url=self.url, timeout=10, trust_env=False)


class SandboxClient:
    """One sandbox key against a gateway: Blueticked's routes and the workspace's control routes."""

    def __init__(self, http: httpx.Client, key: str, prefix: str = API) -> None:
        self.http = http
        self.key = key
        self.prefix = prefix
        self.headers = {"authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.http.request(method, self.prefix + path, headers=self.headers, json=json, params=params or None)

    def ok(self, method: str, path: str, json: Any = None, expect: int | None = None, **params: Any) -> Any:
        response = self.call(method, path, json, **params)
        assert response.status_code == (expect or response.status_code) and response.status_code < 300, response.text
        assert response.headers["x-test-mode"] == "true"
        return response.json()

    def control(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        return self.http.request(method, "/_testmode/sandbox" + path, headers=self.headers, json=json,
                                 params=params or None)

    def advance(self, seconds: float) -> dict[str, Any]:
        response = self.control("POST", "/clock/advance", {"seconds": seconds})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        response = self.control("GET", "/events", **({"type": type} if type else {}), limit=1000)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def reset(self) -> None:
        assert self.control("POST", "/reset").status_code == 200

    # The seed's setup: a contact, and an approved template (created, then reviewed one step later).
    def contact(self, phone: str, **fields: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.ok("POST", "/v1/contacts", {"phone": phone, **fields})
        return found

    def approved_template(self, body: str = "Hi {{1}}, your statement for {{2}} is ready.",
                          name: str = "statement_ready_v1") -> dict[str, Any]:
        created = self.ok("POST", "/v1/templates", {"name": name, "category": "utility", "language": "en_US",
                                                    "body": body}, expect=201)
        assert created["status"] == "pending"
        self.advance(self.workspace()["step_seconds"])
        template: dict[str, Any] = self.ok("GET", f"/v1/templates/{created['id']}")
        assert template["status"] == "approved", template
        return template

    def workspace(self) -> dict[str, Any]:
        response = self.control("GET", "")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def row_counts(state_dir: Path) -> dict[str, int]:
    """Rows in every table of the gateway's store, read-only (SQLite readers never block its writer)."""
    conn = sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in sorted(tables)}
    finally:
        conn.close()


def query(state_dir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()
