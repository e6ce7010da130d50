"""End-to-end fixtures on top of tests/conftest.py: one keep-alive client, and gateways in trouble."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.servers import Gateway, Provider, free_port


@pytest.fixture(scope="session")
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    """One keep-alive client for the deployed gateway (no retries, no env proxies)."""
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as http:
        yield http


@pytest.fixture(scope="session")
def dead_gateway(keys: Keys) -> Iterator[Gateway]:
    """A gateway whose provider is a closed port on 127.0.0.1: nothing can be sent, nothing can be verified."""
    gw = Gateway(upstream=f"http://127.0.0.1:{free_port()}", keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL})
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def impatient_gateway(provider: Provider, keys: Keys) -> Iterator[Gateway]:
    """A gateway that gives the provider one second for a whole exchange (TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT)."""
    gw = Gateway(upstream=provider.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT": "1"})
    yield gw
    gw.stop()
