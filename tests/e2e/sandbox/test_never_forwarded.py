"""Property: nothing a sandbox key sends reaches Blueticked — over every route of the pack and paths it
does not declare, any method, any body (valid or not, flagged or not), any query, reads included.

Each example is a real HTTP request to the deployed gateway. The stand-in records what it receives:
with an issued sandbox key nothing at all; with a pass-through ``blu_test_`` key only its read-only
verification (``GET /v1/contacts?limit=1``, made once and cached). No answer is a 5xx, and every
answer is JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proxy.policy.loader import load_policy
from tests.e2e.sandbox.conftest import PASSTHROUGH_LIVE, PROVIDER_CREDENTIAL, BluKeys
from tests.support.sandbox import API, BluetickedStandIn
from tests.support.servers import POLICIES

ROUTES = load_policy(POLICIES / "blueticked.yaml").route_list
VERIFY = ("GET", "/v1/contacts", "limit=1")

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | \
    st.text(max_size=8)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)
SEGMENT = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_-."), min_size=1,
                  max_size=12).filter(lambda s: s not in (".", ".."))
PHONES = st.sampled_from(["+27800000001", "+27800000002", "+27800000003", "+27821234567"])
FLAG = st.sampled_from([{}, {}, {}, {"test_mode": True}, {"test_mode": False}, {"test_mode": "true"},
                        {"test_mode": None}])


def valid_ish(route_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies near what the route accepts, so the sandbox's own operations run, not just the schema."""
    if route_id == "messages.send":
        return st.fixed_dictionaries({"channel": st.sampled_from(["whatsapp", "sms", "email"]),
                                      "to": st.builds(lambda p: {"phone": p}, PHONES),
                                      "body": st.text(min_size=1, max_size=20)},
                                     optional={"template_id": st.sampled_from(["tpl_x", "tpl_y"]),
                                               "template_variables": st.dictionaries(
                                                   st.sampled_from(["1", "2", "3"]), st.text(max_size=5))})
    if route_id in ("contacts.upsert", "contacts.update"):
        return st.fixed_dictionaries({}, optional={"phone": PHONES, "email": st.just("a@example.com"),
                                                   "first_name": st.text(max_size=10)})
    if route_id == "suppression.add":
        return st.fixed_dictionaries({"identifier": PHONES}, optional={"channel": st.sampled_from(["all", "sms"])})
    if route_id == "templates.create":
        return st.fixed_dictionaries({"name": st.sampled_from(["a_v1", "sandbox_rejected"]),
                                      "category": st.just("utility"), "language": st.just("en_US"),
                                      "body": st.sampled_from(["Hi {{1}}.", "{{1}}", "Hi {{x}}"])})
    return st.just({})


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, Any, dict[str, str]]:
    """(method, path under the mount, JSON body or None, query)."""
    if draw(st.integers(0, 9)) == 0:  # a path the pack does not declare
        path = "/" + "/".join(draw(st.lists(SEGMENT, min_size=1, max_size=3)))
        route_id = ""
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]))
    else:
        route = draw(st.sampled_from(ROUTES))
        route_id = route.id
        path = "/" + "/".join(draw(SEGMENT) if part.startswith("{") else part
                              for part in route.path.text.strip("/").split("/"))
        method = route.method if draw(st.integers(0, 4)) else draw(st.sampled_from(["GET", "POST", "DELETE"]))
    body: Any = None
    if method not in ("GET", "HEAD") or draw(st.booleans()):
        body = draw(st.one_of(valid_ish(route_id), st.dictionaries(st.text(max_size=8), JSON, max_size=4)))
        if isinstance(body, dict):
            body = {**body, **draw(FLAG)}
    query = draw(st.one_of(st.just({}), st.dictionaries(
        st.sampled_from(["limit", "cursor", "channel", "status", "direction", "test_mode"]),
        st.text(max_size=6) | st.sampled_from(["1", "20", "all", "sms", "inbound"]), max_size=2)))
    return method, path, body, query


@pytest.fixture(scope="module")
def records(standin: BluetickedStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, timeout=15, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def passthrough(standin: BluetickedStandIn, blu_http: httpx.Client, blu_keys: BluKeys) -> str:
    """A verified pass-through sandbox key; every workspace gets the phones as contacts, so sends go through."""
    key = f"blu_test_{uuid.uuid4().hex}"
    standin.configure(valid_keys=[PROVIDER_CREDENTIAL, PASSTHROUGH_LIVE, key])
    for sandbox_key in (blu_keys.test, blu_keys.team_a, key):
        for phone in PHONES.elements:  # type: ignore[attr-defined]
            response = blu_http.post(API + "/v1/contacts", json={"phone": phone},
                                     headers={"authorization": f"Bearer {sandbox_key}"})
            assert response.status_code in (200, 201), response.text
    return key


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests(), which=st.sampled_from(["issued", "shared", "passthrough"]))
def test_nothing_a_sandbox_key_sends_reaches_the_provider(
    blu_http: httpx.Client, blu_keys: BluKeys, records: httpx.Client, passthrough: str,
    request: tuple[str, str, Any, dict[str, str]], which: str,
) -> None:
    method, path, body, query = request
    key = {"issued": blu_keys.test, "shared": blu_keys.team_a, "passthrough": passthrough}[which]
    records.delete("/__records")
    response = blu_http.request(method, API + path, params=query, headers={"authorization": f"Bearer {key}"},
                                json=body)
    assert response.status_code < 500, response.text
    event(f"{response.status_code} {response.json()['error']['code'] if response.status_code >= 400 else 'ok'}"
          if method != "HEAD" else "HEAD")
    if method != "HEAD":
        assert response.headers["content-type"].startswith("application/"), response.headers
        assert response.headers["content-type"].endswith("json")
    seen = [(r["method"], r["path"], r["query"]) for r in records.get("/__records").json()]
    assert seen in ([], [VERIFY]) if which == "passthrough" else seen == [], (method, path, seen)
