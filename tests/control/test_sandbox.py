"""The sandbox's control routes in-process: who may call them, what each refuses (problem details,
with the field), and what each does to the caller's workspace only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.clock import ManualClock
from proxy.components import Components, build
from proxy.control.app import control_app
from proxy.keys.registry import create_key
from proxy.settings import Settings
from tests.support.servers import POLICIES


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Components]:
    built = build(Settings(policies_dir=POLICIES, keys_file=tmp_path / "keys.json", state_dir=tmp_path / "state"),
                  clock=ManualClock())
    yield built
    built.db.close()


@pytest.fixture
def keys(parts: Components) -> dict[str, str]:
    assert parts.settings.keys_file is not None
    made = {name: create_key(parts.settings.keys_file, policy, mode, ["*"], prefix)[0]  # type: ignore[arg-type]
            for name, policy, mode, prefix in [("blu", "blueticked", "test", "blu_test_gw_"),
                                               ("blu2", "blueticked", "test", "blu_test_gw_"),
                                               ("live", "blueticked", "live", "blu_live_gw_"),
                                               ("sent", "sent", "test", "sk_test_gw_")]}
    parts.registry.reload_interval = 0
    return made


@pytest.fixture
async def client(parts: Components) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=control_app(parts)),
                                 base_url="http://gw/_testmode") as http:
        yield http


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    if field is not None:
        assert doc["errors"][0]["field"] == field
    return doc


async def test_only_a_sandbox_key_of_a_sandbox_policy_gets_in(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    problem(await client.get("/sandbox"), 401)
    problem(await client.get("/sandbox", headers=auth(keys["live"])), 403)
    assert "no sandbox" in problem(await client.get("/sandbox", headers=auth(keys["sent"])), 404)["detail"]
    ok = await client.get("/sandbox", headers=auth(keys["blu"]))
    assert ok.status_code == 200 and ok.json()["policy"] == "blueticked" and ok.json()["seed"] is None


@pytest.mark.parametrize("seconds", [0, -5, "5", True, None, 1e12])
async def test_advance_takes_a_positive_number_of_seconds(
    client: httpx.AsyncClient, keys: dict[str, str], seconds: Any
) -> None:
    response = await client.post("/sandbox/clock/advance", json={"seconds": seconds}, headers=auth(keys["blu"]))
    problem(response, 400, "seconds")


async def test_advance_moves_only_the_callers_clock(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    moved = (await client.post("/sandbox/clock/advance", json={"seconds": 90}, headers=auth(keys["blu"]))).json()
    other = (await client.get("/sandbox", headers=auth(keys["blu2"]))).json()
    assert moved["now"] == "2026-01-01T00:01:30.000Z" and other["now"] == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(("body", "field"), [
    ({"text": "hi"}, "from"), ({"from": "0821234567", "text": "hi"}, "from"), ({"from": "+27821234567"}, "text"),
    ({"from": "+27821234567", "text": "hi", "channel": "email"}, "channel"),
])
async def test_inbound_needs_a_phone_and_text(
    client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any], field: str
) -> None:
    problem(await client.post("/sandbox/inbound", json=body, headers=auth(keys["blu"])), 400, field)


async def test_bodies_must_be_json_objects(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    problem(await client.post("/sandbox/inbound", content=b"[1]", headers=auth(keys["blu"])), 400)
    problem(await client.post("/sandbox/inbound", content=b"{nope", headers=auth(keys["blu"])), 400)


async def test_seed_is_set_read_and_cleared(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = auth(keys["blu"])
    problem(await client.put("/sandbox/seed", json={}, headers=headers), 400, "seed")
    problem(await client.put("/sandbox/seed", json={"seed": "s", "start": "yesterday"}, headers=headers), 400, "start")
    problem(await client.put("/sandbox/seed", json={"seed": "s", "start": "2026-05-22T10:30:00"}, headers=headers), 400,
            "start")  # no zone: which instant is it?
    set_ = await client.put("/sandbox/seed", json={"seed": "s", "start": "2026-05-22T12:30:00+02:00"},
                            headers=headers)
    assert set_.json()["start"] == "2026-05-22T10:30:00.000Z" and set_.json()["now"] == set_.json()["start"]
    assert (await client.get("/sandbox/seed", headers=headers)).json()["seed"] == "s"
    assert (await client.delete("/sandbox/seed", headers=headers)).json()["seed"] is None


async def test_events_page_with_after(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = auth(keys["blu"])
    for n in range(3):
        assert (await client.post("/sandbox/inbound", json={"from": f"+2782000000{n}", "text": "hi"},
                                  headers=headers)).status_code == 201
    first = (await client.get("/sandbox/events", params={"limit": 4}, headers=headers)).json()
    rest = (await client.get("/sandbox/events", params={"after": first["next_after"]}, headers=headers)).json()
    types = [e["type"] for e in first["data"] + rest["data"]]
    assert types == ["contact.created", "message.received"] * 3
    received = (await client.get("/sandbox/events", params={"type": "message.received"}, headers=headers)).json()
    assert len(received["data"]) == 3 and all(e["payload"]["test"] is True for e in received["data"])
    problem(await client.get("/sandbox/events", params={"limit": 0}, headers=headers), 400)


async def test_an_inbound_message_has_no_lifecycle_to_force(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    headers = auth(keys["blu"])
    inbound = await client.post("/sandbox/inbound", json={"from": "+27821234567", "text": "hi"}, headers=headers)
    message = inbound.json()
    problem(await client.post(f"/sandbox/messages/{message['message']['id']}/events", json={"status": "read"},
                              headers=headers), 409)
