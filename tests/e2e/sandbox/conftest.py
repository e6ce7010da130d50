"""The deployed gateway in front of the Blueticked stand-in, with issued Blueticked keys.

Fresh workspaces without waiting for the registry's reload: a pass-through sandbox key
(``blu_test_…``) the stand-in accepts has a workspace of its own, so :func:`fresh` hands each test
one (its one verification GET is the only request a sandbox key may cause at the provider). Both
fixtures' workspaces are seeded: their clocks move only when the test advances them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from proxy.keys.registry import create_key
from tests.support.sandbox import BluetickedStandIn, SandboxClient
from tests.support.servers import Gateway

PROVIDER_CREDENTIAL = "blu_live_provider_credential_0001"
PASSTHROUGH_LIVE = "blu_live_passthrough_valid_0001"


@dataclass(frozen=True)
class BluKeys:
    file: Path
    test: str  # an issued sandbox key with a workspace of its own
    other: str  # another one
    team_a: str  # two issued sandbox keys sharing the workspace "team"
    team_b: str
    live: str  # an issued live key (swapped for PROVIDER_CREDENTIAL on forward)


@pytest.fixture(scope="session")
def standin() -> Iterator[BluetickedStandIn]:
    stand_in = BluetickedStandIn()
    stand_in.configure(valid_keys=[PROVIDER_CREDENTIAL, PASSTHROUGH_LIVE])
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def blu_keys(tmp_path_factory: pytest.TempPathFactory) -> BluKeys:
    file = tmp_path_factory.mktemp("blu-keys") / "keys.json"

    def key(mode: str = "test", workspace: str | None = None) -> str:
        prefix = "blu_test_gw_" if mode == "test" else "blu_live_gw_"
        raw, _ = create_key(file, "blueticked", mode, ["*"], prefix, workspace=workspace)  # type: ignore[arg-type]
        return raw

    return BluKeys(file, key(), key(), key(workspace="team"), key(workspace="team"), key("live"))


@pytest.fixture(scope="session")
def blu_gateway(standin: BluetickedStandIn, blu_keys: BluKeys,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # Each test's fresh pass-through key is one verification: more than the per-client default allows.
    gw = Gateway(upstream=standin.url, keys_file=blu_keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_BLUETICKED": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_VERIFY_CLIENT_PER_MINUTE": "6000", "TESTMODE_PROXY_VERIFY_CLIENT_BURST": "1000",
                      "TESTMODE_PROXY_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1/32"},  # the receiver, on 127.0.0.1
                 log_file=tmp_path_factory.mktemp("blu-gateway") / "gateway.log")
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def blu_http(blu_gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=blu_gateway.url, timeout=30, trust_env=False) as http:
        yield http


@pytest.fixture
def fresh(standin: BluetickedStandIn, blu_http: httpx.Client) -> Callable[[], SandboxClient]:
    """Make a sandbox client with a new pass-through ``blu_test_`` key: an empty workspace of its own."""
    accepted = [PROVIDER_CREDENTIAL, PASSTHROUGH_LIVE]

    def make() -> SandboxClient:
        key = f"blu_test_{uuid.uuid4().hex}"
        accepted.append(key)
        standin.configure(valid_keys=accepted)
        return frozen(SandboxClient(blu_http, key))

    return make


@pytest.fixture
def issued(blu_keys: BluKeys, blu_http: httpx.Client) -> SandboxClient:
    """The issued sandbox key's workspace, reset."""
    return frozen(SandboxClient(blu_http, blu_keys.test))


def frozen(client: SandboxClient) -> SandboxClient:
    """The client's workspace seeded (which resets it): its clock moves only when a test advances it, so
    no step happens behind a test's back however slow the machine is."""
    response = client.control("PUT", "/seed", {"seed": client.key[-12:]})
    assert response.status_code == 200, response.text
    return client
