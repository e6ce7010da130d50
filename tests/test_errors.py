"""The one error-code catalogue (proxy/errors.py), held to the raise sites and to policies/README.md."""

from __future__ import annotations

import re
from pathlib import Path

from proxy.errors import CODES, DIALECT, PROBLEM_ONLY
from proxy.policy.loader import ERROR_CODES

ROOT = Path(__file__).resolve().parents[1]
# GatewayError(<status>, "<code>" … and bad_request("<code>" …, across line breaks.
_RAISED = re.compile(r"GatewayError\(\s*(\d{3}),\s*\"([a-z_]+)\"")
_BAD_REQUEST = re.compile(r"\bbad_request\(\s*\"([a-z_]+)\"")


def raise_sites() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "proxy").rglob("*.py")):
        text = path.read_text()
        found += [(str(path.relative_to(ROOT)), int(status), code) for status, code in _RAISED.findall(text)]
        found += [(str(path.relative_to(ROOT)), 400, code) for code in _BAD_REQUEST.findall(text)]
    return found


def test_every_raised_code_is_catalogued_with_its_status() -> None:
    sites = raise_sites()
    assert len(sites) > 50  # the scan sees the raise sites at all
    wrong = [(where, status, code) for where, status, code in sites if status not in CODES.get(code, ())]
    assert wrong == [], "raised with a code or status the catalogue does not list"


def test_every_catalogued_code_is_raised_somewhere() -> None:
    raised = {code for _, _, code in raise_sites()}
    # Raised with a status from a variable: the policy's mismatch status, forward's failure table.
    indirect = {"idempotency_mismatch", "upstream_timeout"}
    assert set(CODES) - raised - indirect == set()


def test_the_dialect_codes_are_what_policies_may_reword_and_the_readme_names() -> None:
    assert tuple(DIALECT) == ERROR_CODES
    assert not set(DIALECT) & set(PROBLEM_ONLY)
    readme = (ROOT / "policies" / "README.md").read_text()
    missing = [code for code in DIALECT if f"`{code}`" not in readme]
    assert missing == []
