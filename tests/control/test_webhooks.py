"""/_testmode/webhooks: subscribe, list, change, remove; the attempt log; replay; SSRF refused at the door."""

from __future__ import annotations

import pytest

from tests.support.receiver import Answer, Receiver
from tests.webhooks.harness import Harness, blueticked_valid
from tests.webhooks.test_ssrf import TARGETS


async def test_subscribe_shows_the_secret_once_and_lists_without_it(hooks: Harness, recv: Receiver) -> None:
    async with hooks.api() as api:
        created = await api.post("/webhooks", json={"url": recv.url, "events": ["message.sent"],
                                                    "description": "orders service"})
        listed = await api.get("/webhooks")
        one = await api.get(f"/webhooks/{created.json()['id']}")
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["secret"].startswith("whsec_") and doc["status"] == "active"
    assert (doc["workspace"], doc["policy"], doc["events"]) == (hooks.workspace, "sent", ["message.sent"])
    assert [s["id"] for s in listed.json()["data"]] == [doc["id"]]
    assert "secret" not in listed.json()["data"][0] and "secret" not in one.json()
    hooks.emit("message.sent")
    [delivery] = await recv.until(1)
    assert blueticked_valid(delivery, doc["secret"])


async def test_a_secret_can_be_brought_and_is_checked(hooks: Harness, recv: Receiver) -> None:
    async with hooks.api() as api:
        own = await api.post("/webhooks", json={"url": recv.url, "secret": "my-ci-secret-0123456789abcdef"})
        weak = await api.post("/webhooks", json={"url": recv.url, "secret": "short"})
    assert own.status_code == 201 and own.json()["secret"] == "my-ci-secret-0123456789abcdef"
    assert weak.status_code == 400 and weak.json()["errors"][0]["field"] == "secret"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "url"),
    ({"url": 7}, "url"),
    ({"url": "https://example.com/x", "events": ["message.exploded"]}, "events"),
    ({"url": "https://example.com/x", "events": []}, "events"),
    ({"url": "https://example.com/x", "drills": {"duplicate": 2}}, "drills.duplicate"),
    ({"url": "https://example.com/x", "drills": {"chaos": 0.1}}, "drills.chaos"),
    ({"url": "https://example.com/x", "colour": "red"}, "colour"),
])
async def test_bad_input_is_a_400_naming_the_field(hooks: Harness, body: dict[str, object], field: str) -> None:
    async with hooks.api() as api:
        response = await api.post("/webhooks", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(("url", "reason"), TARGETS)
async def test_every_ssrf_target_is_refused_at_subscription_time(hooks: Harness, url: str, reason: str) -> None:
    hooks.webhooks.guard.allow = ()  # as deployed: no private range allowed
    async with hooks.api() as api:
        response = await api.post("/webhooks", json={"url": url})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "url"
    assert response.json()["code"] == "validation_error"
    assert hooks.webhooks.subscriptions.listed(hooks.workspace) == []


async def test_another_workspace_sees_nothing_and_a_live_key_gets_nowhere(hooks: Harness, recv: Receiver) -> None:
    async with hooks.api() as api:
        sub = (await api.post("/webhooks", json={"url": recv.url})).json()
    async with hooks.api(hooks.other_key) as other:
        assert (await other.get("/webhooks")).json()["data"] == []
        assert (await other.get(f"/webhooks/{sub['id']}")).status_code == 404
        assert (await other.delete(f"/webhooks/{sub['id']}")).status_code == 404
    async with hooks.api("not-a-key") as stranger:
        assert (await stranger.get("/webhooks")).status_code in (401, 403)


async def test_change_drills_status_and_remove(hooks: Harness, recv: Receiver) -> None:
    async with hooks.api() as api:
        sub = (await api.post("/webhooks", json={"url": recv.url})).json()
        changed = await api.patch(f"/webhooks/{sub['id']}", json={"drills": {"duplicate": 0.25}, "status": "disabled"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["drills"] == {"duplicate": 0.25, "out_of_order": 0.0, "wrong_signature": 0.0}
        assert changed.json()["status"] == "disabled"
        hooks.emit("message.sent")
        await hooks.idle()
        assert recv.deliveries() == []
        enabled = await api.patch(f"/webhooks/{sub['id']}", json={"status": "active"})
        assert enabled.json()["disabled_reason"] is None
        removed = await api.delete(f"/webhooks/{sub['id']}")
        assert removed.json() == {"id": sub["id"], "object": "webhook_subscription", "deleted": True}
        assert (await api.get(f"/webhooks/{sub['id']}")).status_code == 404


async def test_the_attempt_log_and_replay_of_one_event_and_of_failures_since_a_time(
    hooks: Harness, recv: Receiver,
) -> None:
    async with hooks.api() as api:
        sub = (await api.post("/webhooks", json={"url": recv.url})).json()
        delivered = hooks.emit("message.sent", subject="msg_ok")
        await recv.until(1)
        await hooks.idle()
        recv.default = Answer(500)
        since = hooks.parts.schedule.now(hooks.workspace)
        failing = hooks.emit("message.sent", subject="msg_bad")
        for _ in range(9):
            await hooks.advance(36000 * 1.1)  # every attempt of Svix's schedule fails
        log = (await api.get("/webhooks/attempts", params={"event": failing.id})).json()["data"]
        assert len(log) == 8 and {a["status"] for a in log} == {500}
        assert {"id", "at", "url", "status", "latency_ms", "error", "signature", "outcome", "attempt"} <= set(log[0])
        recv.default = Answer(200)
        before = len(recv.deliveries())
        one = await api.post(f"/webhooks/events/{delivered.id}/replay")
        failed = await api.post("/webhooks/replay", json={"since": since})
        assert one.status_code == 202 and failed.status_code == 202, failed.text
        assert [d["event"] for d in one.json()["data"]] == [delivered.id]
        assert [d["event"] for d in failed.json()["data"]] == [failing.id]
        got = await recv.until(before + 2)
        await hooks.idle()
        assert sorted(d.event_id for d in got[before:]) == sorted([delivered.id, failing.id])
        assert all(blueticked_valid(d, sub["secret"]) for d in got[before:])
        replays = [a for a in (await api.get("/webhooks/attempts")).json()["data"] if a["trigger"] == "replay"]
        assert sorted(a["event"] for a in replays) == sorted([delivered.id, failing.id])
        assert all(a["outcome"] == "delivered" for a in replays)
        again = await api.post("/webhooks/replay", json={"since": "2000-01-01T00:00:00Z"})
        assert again.json()["data"] == []  # the failure was recovered by the replay: nothing twice
        paged = (await api.get("/webhooks/attempts", params={"limit": 2})).json()
        rest = (await api.get("/webhooks/attempts", params={"before": paged["next_before"]})).json()
        assert len(paged["data"]) == 2 and rest["data"][0]["id"] != paged["data"][-1]["id"]
        unknown = await api.post("/webhooks/events/evt_nope/replay")
        assert unknown.status_code == 404
