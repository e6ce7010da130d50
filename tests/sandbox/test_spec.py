"""The ``sandbox:`` section compiles once, with its own errors at load (``file: sandbox.key: message``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.policy.loader import PolicyError, load_policy
from proxy.sandbox.format import ERROR_KEYS, OPERATIONS
from proxy.sandbox.magic import SEED_DEFAULTS
from proxy.webhooks.provider import OPERATIONS as WEBHOOK_OPERATIONS
from tests.support.sandbox_world import World
from tests.support.servers import POLICIES

SOURCE = POLICIES / "blueticked.yaml"


def variant(tmp_path: Path, change: Any) -> Path:
    """policies/blueticked.yaml with ``change(doc)`` applied, written to a temp file."""
    doc = yaml.safe_load(SOURCE.read_text())
    change(doc)
    path = tmp_path / "blueticked.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_the_blueticked_policy_switches_the_sandbox_on_with_the_seeds_facts() -> None:
    spec = load_policy(SOURCE).sandbox
    assert spec is not None
    assert spec.step_seconds == 5.0
    assert spec.states == ("queued", "sent", "delivered", "read")
    assert spec.magic == SEED_DEFAULTS
    assert spec.events["failed"] == "message.failed" and spec.events["received"] == "message.received"
    assert spec.ids["contact"] == "con_" and spec.ids["suppression"] == "sup_"
    assert set(spec.operations.values()) == set(OPERATIONS)
    assert set(spec.errors) == set(ERROR_KEYS)
    assert spec.next_state("queued") == "sent" and spec.next_state("read") is None
    assert spec.next_state("failed") is None


def test_every_operation_has_a_handler(world: World) -> None:
    assert set(world.sandbox.operations) | set(WEBHOOK_OPERATIONS) == set(OPERATIONS)  # webhooks.*: delivery's


def test_an_error_fills_its_names_and_keeps_unknown_ones() -> None:
    spec = load_policy(SOURCE).sandbox
    assert spec is not None
    error = spec.error("contact_not_found", identifier="+27820000000")
    assert (error.status, error.code, error.reason) == (404, "not_found", "contact_not_found")
    assert "+2******0000" in error.message  # quoted back masked: an error body never carries a phone whole
    assert "+27820000000" not in error.message
    assert "s***@example.com" in spec.error("contact_not_found", identifier="sam@example.com").message
    assert "{needs}" in spec.error("contact_no_channel", channel="sms").message


def test_policies_without_the_section_have_no_sandbox() -> None:
    assert load_policy(POLICIES / "sent.yaml").sandbox is None


def test_magic_numbers_default_to_the_seeds(tmp_path: Path) -> None:
    spec = load_policy(variant(tmp_path, lambda d: d["sandbox"].pop("magic_numbers"))).sandbox
    assert spec is not None and spec.magic == SEED_DEFAULTS


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(doc: dict[str, Any]) -> None:
        node = doc["sandbox"]
        *parents, last = path
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return change


_DELETE = object()


@pytest.mark.parametrize(("change", "where"), [
    (_set(("operations", "nope.route"), "contacts.get"), "sandbox.operations.nope.route"),
    (_set(("operations", "contacts.list"), "contacts.get"), "sandbox.operations.contacts.list"),
    (_set(("operations", "messages.send"), "messages.teleport"), "sandbox.operations.messages.send"),
    (_set(("errors", "contact_not_found"), _DELETE), "sandbox.errors"),
    (_set(("errors", "contact_not_found", "status"), 500), "sandbox.errors.contact_not_found.status"),
    (_set(("shapes", "event", "test"), False), "sandbox.shapes.event"),
    (_set(("shapes", "contact"), {"id": "{{ contact.id | nope }}"}), "sandbox.shapes.contact"),
    (_set(("magic_numbers", "+27800000002", "fail_at"), "queued"), "sandbox.magic_numbers.+27800000002.fail_at"),
    (_set(("magic_numbers", "+27800000009"), {"fail_at": "sent"}), "sandbox.magic_numbers.+27800000009"),
    (_set(("lifecycle", "step_seconds"), 0), "sandbox.lifecycle.step_seconds"),
    (_set(("templates", "rules", "adjacent", "at"), "later"), "sandbox.templates.rules.adjacent.at"),
    (_set(("ids", "message"), "MSG-"), "sandbox.ids.message"),
])
def test_a_broken_section_fails_at_load_naming_the_key(tmp_path: Path, change: Any, where: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(variant(tmp_path, change))
    assert f": {where}" in str(caught.value), str(caught.value)
