"""Shared fixtures: a stand-in provider process, an issued-key registry, and a gateway process.

Secrets in tests carry the canary marker (:mod:`tests.support.canary`): the constants below, the issued keys
of :func:`keys`, and ``canary.marked(prefix)`` / ``canary.WEBHOOK_SECRET`` / ``canary.PHONE`` /
``canary.EMAIL`` for new tests. Start gateways through :class:`tests.support.servers.Gateway` and they are
checked automatically: when the session ends, every gateway log, its last ``/metrics`` page and every error
body read through httpx are scanned for raw secrets, phone numbers and email addresses, and a finding fails
the run (listed under "secret canary").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from proxy.keys.identity import digest
from proxy.keys.registry import create_key, parse_registry
from tests.support import canary
from tests.support.canary import MARKER
from tests.support.servers import Gateway, Provider

PROVIDER_CREDENTIAL = f"sk_live_{MARKER}_provider_credential_0001"
PASSTHROUGH_LIVE = f"sk_live_{MARKER}_passthrough_valid_0001"
PASSTHROUGH_TEST = f"sk_test_{MARKER}_passthrough_valid_0001"
# A SendGrid-shaped key (SG.<22>.<43>, policies/sendgrid.yaml keys.shapes) the stand-in accepts.
SENDGRID_PASSTHROUGH = f"SG.{MARKER}passthroughValid.passthrough-valid-secret-0001-abcdefghijklm"


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


SOAK = os.environ.get("TESTMODE_PROXY_SOAK") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: minutes of traffic against a real gateway; runs when "
                            "TESTMODE_PROXY_SOAK=1 (CI's .ci/run sets it), skipped otherwise")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if SOAK:
        return
    skip = pytest.mark.skip(reason="the soak runs when TESTMODE_PROXY_SOAK=1 (CI sets it)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def secret_canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[canary.Session]:
    """Gateway logs in this session's temporary directory; error bodies checked as tests read them."""
    canary.SESSION.directory = tmp_path_factory.mktemp("gateway-logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Response, "read", canary.reading_checked(httpx.Response.read))
        patch.setattr(httpx.Response, "aread", canary.areading_checked(httpx.Response.aread))
        yield canary.SESSION


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The secret canary's verdict, once every gateway has stopped: any finding fails the run."""
    found = canary.SESSION.scan()
    session.config.stash[_CANARY_FINDINGS] = found
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_CANARY_FINDINGS = pytest.StashKey[list[canary.Finding]]()


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    stand_in = Provider()
    stand_in.configure(valid_keys=[PASSTHROUGH_LIVE, PASSTHROUGH_TEST, SENDGRID_PASSTHROUGH], me_status=None)
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    file = tmp_path_factory.mktemp("keys") / "keys.json"
    sent_live, _ = create_key(file, "sent", "live", ["*"], "sk_live_gw_" + MARKER)
    sent_test, _ = create_key(file, "sent", "test", ["*"], "sk_test_gw_" + MARKER)
    contacts_only, _ = create_key(file, "sent", "test", ["contacts:write"], "sk_test_gw_" + MARKER)
    sg_live, _ = create_key(file, "sendgrid", "live", ["*"], "SG.gwlive." + MARKER)
    sg_test, _ = create_key(file, "sendgrid", "test", ["*"], "SG.gwtest." + MARKER)
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
    found = terminalreporter.config.stash.get(_CANARY_FINDINGS, [])
    if canary.SESSION.logs:
        terminalreporter.write_line(f"secret canary: {len(found)} findings in {canary.SESSION.files_scanned} gateway "
                                    f"logs and metrics pages and {canary.SESSION.bodies_checked} error bodies")
    if found:
        terminalreporter.section("secret canary", red=True)
        for line in canary.report(found):
            terminalreporter.write_line(line, red=True)
        terminalreporter.write_line(f"{len(found)} raw secrets, phone numbers or emails in gateway output: "
                                    "the run fails (tests/support/canary.py)", red=True, bold=True)
