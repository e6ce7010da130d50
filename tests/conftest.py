"""Shared fixtures: a stand-in provider process, an issued-key registry, and a gateway process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxy.keys.identity import digest
from proxy.keys.registry import create_key, parse_registry
from tests.support.servers import Gateway, Provider

PROVIDER_CREDENTIAL = "sk_live_provider_credential_0001"
PASSTHROUGH_LIVE = "sk_live_passthrough_valid_0001"
PASSTHROUGH_TEST = "sk_test_passthrough_valid_0001"
# A SendGrid-shaped key (SG.<22>.<43>, policies/sendgrid.yaml keys.shapes) the stand-in accepts.
SENDGRID_PASSTHROUGH = "SG.passthroughValid000001.passthrough-valid-secret-0001-abcdefghijklm"


@dataclass(frozen=True)
class Keys:
    """Issued keys for the ``sent`` and ``sendgrid`` policies, by mode and scope."""

    file: Path
    sent_live: str
    sent_test: str
    sent_contacts_only: str
    sendgrid_live: str
    sendgrid_test: str

    def key_id(self, raw: str) -> str:
        """The registry id of an issued key (what logs and idempotency records name it by)."""
        return parse_registry(self.file.read_text(), str(self.file))[digest(raw)].id


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    stand_in = Provider()
    stand_in.configure(valid_keys=[PASSTHROUGH_LIVE, PASSTHROUGH_TEST, SENDGRID_PASSTHROUGH], me_status=None)
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    file = tmp_path_factory.mktemp("keys") / "keys.json"
    sent_live, _ = create_key(file, "sent", "live", ["*"], "sk_live_gw_")
    sent_test, _ = create_key(file, "sent", "test", ["*"], "sk_test_gw_")
    contacts_only, _ = create_key(file, "sent", "test", ["contacts:write"], "sk_test_gw_")
    sg_live, _ = create_key(file, "sendgrid", "live", ["*"], "SG.gwlive.")
    sg_test, _ = create_key(file, "sendgrid", "test", ["*"], "SG.gwtest.")
    return Keys(file, sent_live, sent_test, contacts_only, sg_live, sg_test)


@pytest.fixture(scope="session")
def gateway(provider: Provider, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """The gateway as deployed: every policy in policies/, issued keys, the provider credential set."""
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    gw = Gateway(
        upstream=provider.url,
        keys_file=keys.file,
        env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
             "TESTMODE_PROXY_CREDENTIAL_SENDGRID": "SG.provider.credential",
             # The suite verifies hundreds of fresh keys from one address; the limits have their own
             # gateway in tests/e2e/test_key_verification_limits.py.
             "TESTMODE_PROXY_VERIFY_CLIENT_BURST": "100000", "TESTMODE_PROXY_VERIFY_GLOBAL_BURST": "100000"},
        log_file=log,
    )
    yield gw
    gw.stop()


@pytest.fixture
def recorder(provider: Provider) -> Provider:
    """The stand-in provider with its records cleared before the test."""
    provider.clear()
    provider.configure(me_status=None, script=[])
    return provider


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a figure a test reached (time to 408, RSS growth, status and outcome): listed under
    "figures reached" at the end of the run, and kept as a property in a JUnit report."""

    def report(text: str) -> None:
        request.node.user_properties.append(("figure", text))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [f"{report.nodeid}: {value}"
             for outcome in ("passed", "failed")
             for report in terminalreporter.stats.get(outcome, [])
             if getattr(report, "when", None) == "call"
             for name, value in report.user_properties if name == "figure"]
    if lines:
        terminalreporter.section("figures reached")
        for line in lines:
            terminalreporter.write_line(line)
