"""Fixtures for delivery tests (imported by the conftest of each test folder that uses them): a receiver on
127.0.0.1 and the gateway's parts running in-process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from proxy.clock import ManualClock
from proxy.components import build
from proxy.keys.registry import create_key
from proxy.policy.loader import load_policies
from proxy.settings import Settings
from tests.support.receiver import Receiver, receiver
from tests.support.servers import POLICIES
from tests.webhooks.harness import PUBLIC, Harness, with_webhooks


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Harness]:
    """The parts running, with a ``sent`` sandbox key whose workspace (its key id: no binding) has a timeline."""
    # The manual clock starts at the real time: Standard Webhooks receivers compare webhook-timestamp with theirs.
    clock = ManualClock(start=time.time())
    keys = tmp_path / "keys.json"
    key, entry = create_key(keys, "sent", "test", ["*"], "sk_test_gw_")
    other_key, _ = create_key(keys, "sent", "test", ["*"], "sk_test_gw_")
    hosts = tmp_path / "hosts"  # the resolver seam: names the tests use, at public addresses until a test says not
    hosts.write_text(f"{PUBLIC} example.com hook.example.test\n")
    settings = Settings(policies_dir=POLICIES, keys_file=keys, state_dir=tmp_path / "state",
                        webhook_allow_private="127.0.0.1/32", webhook_hosts=hosts)
    policies = with_webhooks(load_policies(POLICIES), "sent", {
        "signing": "blueticked", "timeout": 1,
        "events": ["message.sent", "message.delivered", "message.read", "message.failed"]})
    parts = build(settings, clock=clock, policies=policies)
    parts.scheduler.idle = 0.05
    workspace = f"sent/{entry.id}"  # a key's own workspace, named as the sandbox names it
    parts.schedule.ensure_timeline(workspace)
    async with parts.running():
        yield Harness(parts, clock, workspace, key, other_key, hosts)
