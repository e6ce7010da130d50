"""Telling packs apart: at a prefix several policies share, the key's shape picks the policy, or nobody does.

Sent (``x-api-key``), SendGrid (``Authorization: Bearer SG.…``) and a Blueticked stand-in (``Authorization:
Bearer blu_…``, tests/support/packs.py) are all mounted at ``""``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.errors import GatewayError
from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet
from proxy.policy.mounts import Mounts
from tests.support.packs import BLU_LIVE, BLU_TEST, with_blu

SENT = "sk_live_" + "s" * 24
SENT_TEST = "sk_test_" + "t" * 24
SENDGRID = "SG." + "a" * 22 + "." + "b" * 43


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    return load_policies(with_blu(tmp_path_factory.mktemp("packs")))


@pytest.fixture(scope="module")
def mounts(policies: PolicySet) -> Mounts:
    return Mounts(policies)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("method", "path", "headers", "policy", "route"), [
    # Each key goes to its own pack, declared route or not.
    ("POST", "/v3/messages", {"x-api-key": SENT}, "sent", "messages.send"),
    ("POST", "/v3/messages", {"x-api-key": "sk_live_gw_issued"}, "sent", "messages.send"),
    ("PATCH", "/v3/contacts/c1", {"x-api-key": SENT_TEST}, "sent", "contacts.update"),
    ("GET", "/v3/analytics", {"x-api-key": SENT}, "sent", None),
    ("POST", "/v3/mail/send", bearer(SENDGRID), "sendgrid", "mail.send"),
    ("POST", "/v3/mail/send", bearer("SG.gwlive.issued"), "sendgrid", "mail.send"),
    ("POST", "/v1/messages", bearer(BLU_LIVE), "blu", "messages.send"),
    ("POST", "/v1/messages", bearer(BLU_TEST), "blu", "messages.send"),
    ("POST", "/v1/messages", {"authorization": f"bearer {BLU_LIVE}"}, "blu", "messages.send"),
    # A key decides even where another pack declares the route: it never goes to that pack.
    ("POST", "/v1/messages", bearer(SENDGRID), "sendgrid", None),
    ("POST", "/v3/mail/send", bearer(BLU_LIVE), "blu", None),
    ("POST", "/v3/mail/send", {"x-api-key": SENT}, "sent", None),
    ("POST", "/v3/messages", bearer(SENDGRID), "sendgrid", None),
    # No pack claims the key, one declares the route: that pack's auth refuses it in its own format.
    ("POST", "/v3/messages", {}, "sent", "messages.send"),
    ("POST", "/v3/messages", {"x-api-key": "invalid-key"}, "sent", "messages.send"),
    ("POST", "/v3/messages", bearer(SENT), "sent", "messages.send"),  # Sent takes x-api-key: auth says so
    ("POST", "/v3/mail/send", bearer("SG.not-a-sendgrid-key"), "sendgrid", "mail.send"),
    ("POST", "/v1/messages", bearer("blu_live_short"), "blu", "messages.send"),
    # A prefix only one pack is mounted at needs no key to decide.
    ("POST", "/sendgrid/v3/mail/send", {}, "sendgrid", "mail.send"),
    ("GET", "/sent/v3/anything", {}, "sent", None),
    ("GET", "/blu/v1/messages", {}, "blu", None),
])
def test_the_key_picks_the_pack(
    mounts: Mounts, method: str, path: str, headers: dict[str, str], policy: str, route: str | None
) -> None:
    chosen, found, _, _ = mounts.select(method, path, headers)
    assert (chosen.name, found.id if found else None) == (policy, route)


@pytest.mark.parametrize(("method", "path", "headers", "status", "code"), [
    # The cases: a Sent key in Authorization, a blu key, on paths no pack declares.
    ("GET", "/v3/analytics/abc", bearer(SENT), 401, "unauthorized"),
    ("POST", "/v1/anything", bearer("blu_live_short"), 401, "unauthorized"),
    ("GET", "/v9/anything", bearer("sk_live_whatever"), 401, "unauthorized"),
    ("GET", "/v9/anything", {"x-api-key": "invalid-key"}, 401, "unauthorized"),
    ("GET", "/v9/anything", {"authorization": SENDGRID}, 401, "unauthorized"),  # no Bearer: not a SendGrid key
    ("GET", "/v9/anything", {"authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
    ("GET", "/v9/anything", {}, 404, "not_found"),  # no key at all: no provider to speak for
    # Two packs' keys at once: never a guess.
    ("GET", "/v9/anything", {"x-api-key": SENT, **bearer(SENDGRID)}, 400, "ambiguous_credentials"),
    ("POST", "/v3/messages", {"x-api-key": SENT, **bearer(BLU_LIVE)}, 400, "ambiguous_credentials"),
])
def test_a_request_no_pack_claims_alone_is_refused(
    mounts: Mounts, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        mounts.select(method, path, headers)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_the_refusal_says_what_each_pack_takes(mounts: Mounts) -> None:
    with pytest.raises(GatewayError) as caught:
        mounts.select("GET", "/v9/anything", bearer("sk_live_whatever"))
    assert caught.value.message == (
        "No API key that a provider here accepts: blu takes authorization: Bearer blu_live_…, blu_test_…; "
        "sendgrid takes authorization: Bearer SG.…; sent takes x-api-key: sk_live_…, sk_test_….")


def test_a_declared_route_of_one_pack_is_one_lookup_and_agrees_with_the_general_path(mounts: Mounts) -> None:
    for (method, path), (group, matches) in mounts.exact.items():
        for i, policy in enumerate(group.policies):
            found = matches[i]
            assert found == policy.match(method, path[len(group.prefix):] or "/")


def test_a_path_no_prefix_covers_is_404(policies: PolicySet) -> None:
    prefixed = tuple(replace(p, prefixes=(f"/{p.name}",)) for p in policies.policies)
    mounts = Mounts(PolicySet(prefixed, tuple((p.prefixes[0], p) for p in prefixed)))
    with pytest.raises(GatewayError) as caught:
        mounts.select("GET", "/v3/me", {"x-api-key": SENT})
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert mounts.select("GET", "/sent/v3/me", {})[0].name == "sent"


def test_a_shorter_shared_prefix_cannot_take_a_path_a_longer_prefix_holds(mounts: Mounts) -> None:
    # "/sent" holds the path (undeclared); the shared "" prefix, where no pack claims the request, is no error.
    chosen, found, _, prefix = mounts.select("GET", "/sent/v9/anything", bearer("junk"))
    assert (chosen.name, found, prefix) == ("sent", None, "/sent")
