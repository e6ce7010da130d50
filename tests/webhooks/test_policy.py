"""The policy's webhooks section: compiled once at load; a bad one stops the load with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxy.policy.loader import PolicyError, load_policy
from proxy.webhooks.policy import SVIX_SCHEDULE
from tests.support.servers import POLICIES


def policy_with(tmp_path: Path, section: object) -> Path:
    doc = yaml.safe_load((POLICIES / "sent.yaml").read_text())
    doc["webhooks"] = section
    path = tmp_path / "sent.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_section_compiles_to_its_scheme_schedule_and_events(tmp_path: Path) -> None:
    policy = load_policy(policy_with(tmp_path, {"signing": "blueticked", "events": ["message.sent"],
                                                "retry_schedule": [0, 1, 2], "timeout": 3}))
    spec = policy.webhooks
    assert spec is not None
    assert (spec.scheme.name, spec.retry_schedule, spec.timeout) == ("blueticked", (0.0, 1.0, 2.0), 3.0)
    assert spec.wants("message.sent") and not spec.wants("message.read")
    assert load_policy(policy_with(tmp_path, {})).webhooks.retry_schedule == SVIX_SCHEDULE  # type: ignore[union-attr]
    assert load_policy(POLICIES / "sent.yaml").webhooks is None


@pytest.mark.parametrize(("section", "where"), [
    ({"signing": "md5"}, "webhooks.signing"),
    ({"retry_schedule": []}, "webhooks.retry_schedule"),
    ({"retry_schedule": [0, -5]}, "webhooks.retry_schedule"),
    ({"jitter": 2}, "webhooks.jitter"),
    ({"timeout": 0}, "webhooks.timeout"),
    ({"events": "message.sent"}, "webhooks.events"),
    ({"retries": 3}, "webhooks.retries"),
    ("blueticked", "webhooks"),
])
def test_a_bad_section_names_its_key(tmp_path: Path, section: object, where: str) -> None:
    with pytest.raises(PolicyError, match=rf"sent\.yaml: {where}: "):
        load_policy(policy_with(tmp_path, section))
