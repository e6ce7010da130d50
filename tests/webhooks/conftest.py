"""Fixtures for delivery tests: a receiver on 127.0.0.1 and the gateway's parts running in-process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from proxy.clock import ManualClock
from proxy.components import build
from proxy.policy.loader import load_policies
from proxy.settings import Settings
from tests.support.receiver import Receiver, receiver
from tests.support.servers import POLICIES
from tests.webhooks.harness import WORKSPACE, Harness, with_webhooks


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Harness]:
    # The manual clock starts at the real time: Standard Webhooks receivers compare webhook-timestamp with theirs.
    clock = ManualClock(start=time.time())
    settings = Settings(policies_dir=POLICIES, state_dir=tmp_path / "state", webhook_allow_private="127.0.0.1/32")
    policies = with_webhooks(load_policies(POLICIES), "sent", {"signing": "blueticked", "timeout": 1})
    parts = build(settings, clock=clock, policies=policies)
    parts.scheduler.idle = 0.05
    parts.schedule.ensure_timeline(WORKSPACE)
    async with parts.running():
        yield Harness(parts, clock)
