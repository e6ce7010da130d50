"""Schemathesis against each pack's OpenAPI description, generated from its policy (issue 15).

``testmode-proxy openapi POLICY`` is fed to the Schemathesis CLI, pointed at the real gateway in front of the
recording stand-in provider, with an issued test key: positive and negative data, up to 100 examples per
operation (examples, coverage and fuzzing phases). Every response must be no server error, carry a status
the description documents, with its content type and headers, and a body that validates against the
documented schema; data outside the documented request schema must be refused (4xx); and the provider
must receive nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.keys.registry import create_key
from tests.conftest import Keys
from tests.support.canary import MARKER
from tests.support.servers import Gateway, Provider

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "negative_data_rejection")
BIN = Path(sys.executable).parent


def blueticked_sandbox_key(keys: Keys) -> str:
    """An issued Blueticked sandbox key in the suite's registry (the gateway re-reads it within 2 s)."""
    raw, _ = create_key(keys.file, "blueticked", "test", ["*"], "blu_test_gw_" + MARKER)
    time.sleep(2.5)
    return raw


@pytest.mark.parametrize("policy", ["sendgrid", "sent", "blueticked"])
def test_schemathesis_finds_nothing_and_the_provider_receives_nothing(
    policy: str, gateway: Gateway, keys: Keys, recorder: Provider, tmp_path: Path
) -> None:
    spec = tmp_path / f"{policy}.openapi.json"
    spec.write_text(subprocess.run([str(BIN / "testmode-proxy"), "openapi", policy], capture_output=True,
                                   text=True, check=True, timeout=60).stdout)
    if policy == "blueticked":  # a sandbox key: every answer comes from the key's workspace
        header = f"authorization: Bearer {blueticked_sandbox_key(keys)}"
    elif policy == "sendgrid":
        header = f"authorization: Bearer {keys.sendgrid_test}"
    else:
        header = f"x-api-key: {keys.sent_test}"
    # An HTTP API ignores headers it does not know (the providers do, and so does the gateway, which passes
    # them on): a request carrying one is not schema-violating, so Schemathesis is told not to treat an
    # unknown header or query parameter as negative data.
    (tmp_path / "schemathesis.toml").write_text("[generation]\nallow-extra-parameters = false\n")
    run = subprocess.run(
        [str(BIN / "schemathesis"), "run", str(spec), "--url", gateway.url, "--checks", ",".join(CHECKS),
         "--mode", "all", "--max-examples", "100", "--phases", "examples,coverage,fuzzing", "--header", header,
         "--seed", "14", "--workers", "1", "--generation-database", "none", "--no-color",
         "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")],
        capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path,
    )
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert counts is not None, summary
    generated, passed = map(int, counts.groups())
    assert generated == passed and generated >= 100, summary
    print(f"{policy}: {generated} test cases, {passed} passed, 0 failures")  # the figure, in -s / -rA output
    assert recorder.records() == []
