"""The control surface under /_testmode: problem details, and only sandbox keys get in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from proxy.components import Components, build
from proxy.control.app import control_app
from proxy.control.auth import authenticate
from proxy.keys.registry import create_key
from proxy.settings import Settings
from tests.support.servers import POLICIES


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Components]:
    built = build(Settings(policies_dir=POLICIES, keys_file=tmp_path / "keys.json", state_dir=tmp_path / "state"))
    yield built
    built.db.close()


def client_for(parts: Components) -> httpx.AsyncClient:
    async def whoami(request: Request) -> Response:
        caller = await authenticate(request, parts)
        return JSONResponse({"key": caller.key.key_id, "policy": caller.policy.name})

    app = control_app(parts, extra=[Route("/whoami", whoami)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_unknown_control_paths_are_problem_details(parts: Components) -> None:
    async with client_for(parts) as client:
        response = await client.get("/_testmode/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_a_sandbox_key_gets_in_and_a_live_or_missing_key_does_not(parts: Components, tmp_path: Path) -> None:
    assert parts.settings.keys_file is not None
    test_key, entry = create_key(parts.settings.keys_file, "sent", "test", ["*"], "sk_test_gw_")
    live_key, _ = create_key(parts.settings.keys_file, "sent", "live", ["*"], "sk_live_gw_")
    parts.registry.reload_interval = 0
    async with client_for(parts) as client:
        ok = await client.get("/_testmode/whoami", headers={"authorization": f"Bearer {test_key}"})
        live = await client.get("/_testmode/whoami", headers={"authorization": f"Bearer {live_key}"})
        missing = await client.get("/_testmode/whoami")
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"key": entry.id, "policy": "sent"}
    assert live.status_code == 403
    assert live.json()["code"] == "forbidden"
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
