"""Key shapes: what a policy's keys look like, read from its key header as the policy's scheme says."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.keys import shapes
from proxy.keys.shapes import KeyShape, claims, read_key
from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet

ROOT = Path(__file__).resolve().parents[2]
SENDGRID = "SG." + "a" * 22 + "." + "b" * 43


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(ROOT / "policies")


@pytest.mark.parametrize(("policy", "key", "kind"), [
    ("sent", "sk_live_" + "a" * 16, "provider"),
    ("sent", "sk_test_" + "a-b_c" * 10, "provider"),
    ("sent", "sk_live_", None),                      # nothing after the prefix
    ("sent", "sk_live_a", "provider"),               # what follows the prefix is not documented: any length
    ("sent", "sk_live_" + "a" * 257, None),
    ("sent", "sk_live_" + "a" * 20 + ".", None),
    ("sent", "sk_prod_" + "a" * 20, None),
    ("sent", "sk_live_gw_x", "issued"),             # issued prefixes need no pattern: the registry knows them
    ("sent", "sk_test_gw_", "issued"),
    ("sent", SENDGRID, None),
    ("sendgrid", SENDGRID, "provider"),
    ("sendgrid", SENDGRID + "b", None),
    ("sendgrid", "SG." + "a" * 21 + "." + "b" * 44, None),
    ("sendgrid", "SG.gwlive.anything", "issued"),
    ("sendgrid", "sk_live_" + "a" * 20, None),
    ("sendgrid", "sg." + "a" * 22 + "." + "b" * 43, None),
])
def test_the_shipped_shapes(policies: PolicySet, policy: str, key: str, kind: str | None) -> None:
    found = policies.by_name(policy)
    assert found is not None
    assert found.keys.shape.kind(key) == kind
    assert found.keys.shape.kind(key) == kind  # the remembered answer is the same


def test_a_flood_of_distinct_keys_does_not_grow_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shapes, "_MEMO_SIZE", 8)
    shape = KeyShape(issued=("gw_",), live=("pk_",), pattern=re.compile(r"pk_[a-z]+"))
    for i in range(100):
        assert shape.kind(f"pk_{i}") is None
        assert len(shape._memo) <= 8
    assert shape.kind("pk_abc") == "provider"


@pytest.mark.parametrize(("scheme", "value", "key"), [
    ("bearer", "Bearer SG.x", "SG.x"),
    ("bearer", "bearer  SG.x ", "SG.x"),
    ("bearer", "SG.x", None),
    ("bearer", "Basic SG.x", None),
    ("bearer", "Bearer ", None),
    ("raw", " sk_live_x ", "sk_live_x"),
    ("raw", "   ", None),
])
def test_read_key(policies: PolicySet, scheme: str, value: str, key: str | None) -> None:
    sent = policies.by_name("sent")
    assert sent is not None
    assert read_key(replace(sent.keys, scheme=scheme), value) == key  # type: ignore[arg-type]


def test_a_policy_claims_a_request_by_its_own_header_and_shape(policies: PolicySet) -> None:
    sent, sendgrid = policies.by_name("sent"), policies.by_name("sendgrid")
    assert sent is not None and sendgrid is not None
    sent_key = "sk_live_" + "a" * 20
    assert claims(sent.keys, {"x-api-key": sent_key})
    assert not claims(sent.keys, {"authorization": f"Bearer {sent_key}"})  # Sent reads x-api-key
    assert not claims(sendgrid.keys, {"authorization": f"Bearer {sent_key}"})  # not SendGrid's shape
    assert claims(sendgrid.keys, {"authorization": f"Bearer {SENDGRID}"})
    assert not claims(sendgrid.keys, {"authorization": SENDGRID})  # no scheme
    assert not claims(sent.keys, {"x-api-key": "  "})
    assert sent.keys.shape.describe() == "sk_live_…, sk_test_…"
    assert KeyShape(issued=("a_", "b_")).describe() == "a_…, b_…"
