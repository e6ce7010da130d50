"""SSRF through the real server: every target of reliability.md refused when subscribing and again when
sending (a name rebound to 127.0.0.1 after subscribing, rows an older gateway or a hand could have
written, a gateway whose allowlist was narrowed), and a 302 to an internal address never followed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.store.database import Database
from proxy.webhooks.subscriptions import Subscriptions
from tests.conftest import Keys
from tests.support.attacker import Attacker, attacker_listener
from tests.support.receiver import Answer, receiver
from tests.support.servers import Gateway, Provider
from tests.support.webhooks import WebhookApi, inject
from tests.webhooks.harness import PUBLIC
from tests.webhooks.test_ssrf import TARGETS

pytestmark = pytest.mark.slow


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    with attacker_listener() as listener:
        yield listener


def gateway(provider: Provider, keys: Keys, state: Path, hosts: Path, allow: str | None) -> Gateway:
    env = {"TESTMODE_PROXY_STATE_DIR": str(state), "TESTMODE_PROXY_WEBHOOK_HOSTS": str(hosts)}
    if allow is not None:
        env["TESTMODE_PROXY_WEBHOOK_ALLOW_PRIVATE"] = allow
    return Gateway(upstream=provider.url, keys_file=keys.file, env=env)


def aimed(url: str, attacker: Attacker) -> str:
    """A loopback target pointed at the attacker's port, so a connection that got through is recorded."""
    for loopback in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0.0.0.0"):
        url = url.replace(f"//{loopback}/", f"//{loopback}:{attacker.port}/")
    return url


def workspace_of(api: WebhookApi) -> str:
    return str(api.call("GET", "").json().get("workspace") or "")


def test_every_target_is_refused_at_subscription_time(
    provider: Provider, keys: Keys, tmp_path: Path, attacker: Attacker,
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{PUBLIC} example.com\n")
    gw = gateway(provider, keys, tmp_path / "state", hosts, None)
    try:
        with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            for url, _reason in TARGETS:
                response = api.call("POST", "", {"url": aimed(url, attacker)})
                assert response.status_code == 400, (url, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["errors"][0]["field"] == "url", url
            assert api.call("GET", "").json()["data"] == []
    finally:
        gw.stop()
    assert attacker.hits == []


def test_every_target_is_refused_again_at_send_time(
    provider: Provider, keys: Keys, tmp_path: Path, attacker: Attacker,
) -> None:
    state, hosts = tmp_path / "state", tmp_path / "hosts"
    hosts.write_text(f"{PUBLIC} hook.example.test\n127.0.0.1 localhost\n")
    # Address targets can be subscribed where an allowlist covers them; names and syntax never can.
    by_address = [aimed(url, attacker) for url, reason in TARGETS
                  if reason == "non_global_address" and "localhost" not in url.lower()]
    by_hand = [aimed(url, attacker) for url, _ in TARGETS if aimed(url, attacker) not in by_address]
    # 1. A gateway that allowed every private range accepts the address targets; a public name is accepted too.
    wide = gateway(provider, keys, state, hosts, "0.0.0.0/0,::/0")
    try:
        with httpx.Client(base_url=wide.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            made = [api.subscribe(url) for url in by_address]
            rebinding = api.subscribe(f"http://hook.example.test:{attacker.port}/in")
            workspace = rebinding["workspace"]
    finally:
        wide.stop()
    # 2. Rows no check lets in (loopback names, userinfo, odd numbers, other schemes): as a hand could write them.
    db = Database(state / "state.db")
    subs = Subscriptions(db)
    for url in by_hand:
        subs.add(workspace=workspace, policy="sent", url=url, events=(), secret="x" * 32, now=0.0)
    db.close()
    # 3. The name now resolves to 127.0.0.1, and the gateway runs as deployed: no allowlist.
    hosts.write_text("127.0.0.1 hook.example.test localhost\n")
    strict = gateway(provider, keys, state, hosts, None)
    try:
        [event] = inject(state, workspace, [("message.sent", "msg_1")])
        expected = len(made) + 1 + len(by_hand)
        with httpx.Client(base_url=strict.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            attempts = api.wait_attempts(expected)
    finally:
        strict.stop()
    assert len(attempts) == expected
    assert {a["event"] for a in attempts} == {event.id}
    assert all(a["outcome"] == "failed" and a["status"] is None for a in attempts)
    assert all(a["error"].startswith("refused: ") for a in attempts), [a["error"] for a in attempts]
    [rebound] = [a for a in attempts if a["subscription"] == rebinding["id"]]
    assert "hook.example.test resolves to 127.0.0.1" in rebound["error"]
    assert attacker.hits == []


def test_a_redirect_to_an_internal_address_is_not_followed(
    provider: Provider, keys: Keys, tmp_path: Path, attacker: Attacker,
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    with receiver() as recv:
        recv.default = Answer(302, {"Location": f"http://127.0.0.1:{attacker.port}/internal"})
        # Loopback is allowed here (the receiver lives there): even a redirect to an allowed address is not followed.
        gw = gateway(provider, keys, tmp_path / "state", hosts, "127.0.0.1/32")
        try:
            with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
                api = WebhookApi(http, keys.sent_test)
                sub = api.subscribe(recv.url)
                inject(gw.state_dir, sub["workspace"], [("message.sent", "msg_1")])
                [attempt] = api.wait_attempts(1)
        finally:
            gw.stop()
        assert len(recv.deliveries()) == 1
    assert (attempt["status"], attempt["outcome"], attempt["error"]) == (302, "failed", "redirects are not followed")
    assert attacker.hits == []
