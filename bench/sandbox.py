"""The ``sandbox`` target: a WhatsApp template send answered from a Blueticked sandbox workspace.

Unlike the stateless test-mode path, each send checks the contact, the suppression list and the
template in SQLite, and commits the message, its first history row and its first lifecycle step
(proxy/sandbox/messages.py; the writes of one event-loop turn share one commit). The gateway serving
this target runs a copy of the policies whose lifecycle step is an hour, so no step falls due during
the run: the figure is the send path's own, not that of earlier sends' steps spilling into other
targets' runs on the same core. The steps' cost is measured by tests/e2e/sandbox/test_timing.py (1,000
sends at a 1 s step).

Setup, through the gateway as a user would: a sandbox key issued with ``keys create --mode test``, a
contact, a template, and one ``clock/advance`` past its review.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import servers

PATH = "/v1/messages"  # Blueticked's send, at the root: the key's shape picks the pack
PHONE = "+27800000001"


def create_key(src: Path, policies: Path, keys_file: Path) -> str:
    """Issue a Blueticked sandbox key with the gateway's own command."""
    done = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "keys", "--file", str(keys_file), "create", "--policy", "blueticked",
         "--mode", "test", "--label", "bench-sandbox", "--policies", str(policies)],
        cwd=src, env={**servers.gateway_env(""), "PYTHONPATH": str(src)}, capture_output=True, text=True, check=False,
    )
    key = done.stdout.strip()
    if done.returncode != 0 or not key:
        raise servers.SetupError(f"`testmode-proxy keys create --policy blueticked` failed: {done.stderr.strip()}")
    return key


def _call(server: servers.Server, key: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, _, answer = servers.request(server.url + path, method, json.dumps(body),
                                        {"content-type": "application/json", "authorization": f"Bearer {key}"})
    if not 200 <= status < 300:
        raise servers.SetupError(f"sandbox setup: {method} {path} answered {status}: {answer[:300]!r}")
    result: dict[str, Any] = json.loads(answer)
    return result


def prepare(target: Any, server: servers.Server, key: str) -> Any:
    """The target with its key and a send body naming a template approved in the key's workspace."""
    _call(server, key, "POST", "/v1/contacts", {"phone": PHONE, "first_name": "Bench"})
    template = _call(server, key, "POST", "/v1/templates", {
        "name": "statement_ready_v1", "category": "utility", "language": "en_US",
        "body": "Hi {{1}}, your statement for {{2}} is ready."})
    _call(server, key, "POST", "/_testmode/sandbox/clock/advance", {"seconds": 3600})
    body = json.dumps({"channel": "whatsapp", "to": {"phone": PHONE}, "template_id": template["id"],
                       "template_variables": {"1": "Sam", "2": "May 2026"}})
    return replace(target, body=body, key=key)


def queued(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 202 or headers.get("x-test-mode") != "true" or b'"status":"queued"' not in body:
        return f"expected a sandbox 202 queued, got {status}: {body[:200]!r}"
    return None
