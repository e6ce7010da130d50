"""proxy/admin.py: /readyz says ready or not and nothing else, whatever the gateway holds."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from proxy.app import Gateway
from proxy.keys.registry import create_key
from proxy.settings import Settings
from tests.support.servers import POLICIES


async def test_readyz_names_no_keys_and_no_policies_ready_or_not(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    for mode in ("live", "test"):
        create_key(keys_file, "sent", mode, ["*"], f"sk_{mode}_gw_")
    settings = Settings(policies_dir=POLICIES, keys_file=keys_file, state_dir=tmp_path / "state")
    gateway = Gateway(settings, registry=CollectorRegistry())
    assert len(gateway.registry) == 2
    transport = httpx.ASGITransport(app=gateway)  # no lifespan: the upstream clients never start
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        starting = await client.get("/readyz")
        assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
        gateway.ready = True
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    await gateway.parts.verify_client.aclose()
