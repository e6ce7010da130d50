"""The *sandbox* stage alone: who it answers (sandbox keys of a policy with a sandbox, reads included),
what it passes on untouched (everything else), and that it never calls the next app after answering."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from proxy.context import NO_BODY
from proxy.keys.registry import KeyRegistry, create_key
from proxy.policy.model import Policy, PolicySet
from proxy.stages.sandbox import Sandbox
from tests.stages.harness import harness
from tests.stages.seeds import issued, passthrough, seed
from tests.support.sandbox_world import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(tmp_path) as made:
        yield made


@pytest.fixture
def blueticked(policy_set: PolicySet) -> Policy:
    found = policy_set.by_name("blueticked")
    assert found is not None
    return found


def stage(world: World, registry: KeyRegistry | None = None) -> Any:
    return partial(Sandbox, sandbox=world.sandbox, registry=registry or KeyRegistry(None))


@pytest.mark.parametrize(("test_mode", "policy_name", "key"), [
    (False, "blueticked", issued("live", key="blu_live_gw_x")),  # live: forwarded later
    (True, "sent", issued("test", key="sk_test_gw_x")),  # a policy without a sandbox: short-circuit's
    (True, "blueticked", passthrough("blu_live_x")),  # a live key's flag, not on the send route
])
async def test_everything_but_sandbox_keys_passes_on(
    world: World, policy_set: PolicySet, test_mode: bool, policy_name: str, key: Any
) -> None:
    policy = policy_set.by_name(policy_name)
    assert policy is not None
    path = "/v1/contacts" if policy_name == "blueticked" else "/v3/contacts"
    client, terminal = harness(stage(world), seed(policy, "POST", path, key=key, body={"phone": "+27821234567"},
                                                  test_mode=test_mode))
    async with client:
        response = await client.post(path)
    assert response.status_code == 299 and terminal.calls == 1
    assert world.rows()["sandbox_contacts"] == 0


@pytest.mark.parametrize("key", [issued("test", key="blu_test_gw_x"), passthrough("blu_test_x")])
async def test_a_sandbox_key_is_answered_from_its_workspace_reads_included(
    world: World, blueticked: Policy, key: Any
) -> None:
    client, terminal = harness(stage(world), seed(blueticked, "GET", "/v1/contacts", key=key, body=NO_BODY,
                                                  test_mode=True))
    async with client:
        response = await client.get("/v1/contacts")
    assert response.status_code == 200 and terminal.calls == 0
    assert response.json() == {"data": [], "next_cursor": None, "has_more": False}
    assert response.headers["x-test-mode"] == "true" and response.headers["content-type"] == "application/json"


async def test_a_sandbox_key_on_an_unsimulated_path_is_404_and_goes_nowhere(
    world: World, blueticked: Policy
) -> None:
    client, terminal = harness(stage(world), seed(blueticked, "GET", "/v1/conversations",
                                                  key=passthrough("blu_test_x"), test_mode=True))
    async with client:
        response = await client.get("/v1/conversations")
    assert response.status_code == 404 and terminal.calls == 0
    assert response.json()["error"]["code"] == "test_mode_unsupported"


async def test_an_issued_key_bound_to_a_workspace_shares_it(
    world: World, blueticked: Policy, tmp_path: Path
) -> None:
    file = tmp_path / "keys.json"
    raw_a, entry_a = create_key(file, "blueticked", "test", ["*"], "blu_test_gw_", workspace="team")
    raw_b, _ = create_key(file, "blueticked", "test", ["*"], "blu_test_gw_", workspace="team")
    registry = KeyRegistry(file)
    world.call("contacts.upsert", world.workspace(entry_a.id, "team"), {"phone": "+27821234567"})
    key_b = issued("test", key=raw_b)
    client, _ = harness(stage(world, registry), seed(blueticked, "GET", "/v1/contacts", key=key_b, test_mode=True))
    async with client:
        response = await client.get("/v1/contacts")
    assert [c["phone"] for c in response.json()["data"]] == ["+27821234567"]
    assert raw_a != raw_b
