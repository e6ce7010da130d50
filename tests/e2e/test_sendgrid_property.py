"""Property: a SendGrid request whose ``sandbox_mode`` is anything but ``{"enable": false}`` never reaches
the provider — valid or not, however it is spelled, with a live key or a pass-through key.

Each example is a real HTTP request to the deployed gateway; the stand-in provider records what it
receives, and only its key-check endpoint (GET /v3/scopes) may appear there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SENDGRID_PASSTHROUGH, Keys
from tests.e2e.test_sendgrid import VALID
from tests.support.servers import Gateway, Provider

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | \
    st.text(max_size=8)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)

# sandbox_mode values that are not exactly {"enable": false} (extra keys may ride along).
NOT_FALSE = JSON.filter(lambda v: v is not False)
SANDBOX_MODE = st.one_of(
    st.builds(lambda enable, extra: {**extra, "enable": enable},
              NOT_FALSE, st.dictionaries(st.sampled_from(["note", "enabled", "Enable"]), JSON, max_size=2)),
    st.just({"enable": True}),
    JSON.filter(lambda v: not isinstance(v, dict)),                  # sandbox_mode: true, "true", [], null …
    st.dictionaries(st.text(max_size=6).filter(lambda k: k != "enable"), JSON, max_size=3),  # no enable
)

# Bodies from valid to nonsense: the real fields, each kept, dropped or replaced by any JSON.
FIELD = st.sampled_from(["keep", "drop", "replace"])
OTHER_SETTINGS = st.dictionaries(st.sampled_from(["footer", "bcc", "spam_check", "bypass_list_management"]),
                                 JSON, max_size=2)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in VALID.items():
        if name == "mail_settings":
            continue
        action = draw(FIELD)
        if action == "keep":
            body[name] = value
        elif action == "replace":
            body[name] = draw(JSON)
    body["mail_settings"] = {**draw(OTHER_SETTINGS), "sandbox_mode": draw(SANDBOX_MODE)}
    return body


def encode(body: dict[str, Any], style: str) -> bytes:
    if style == "compact":  # Node's JSON.stringify
        return json.dumps(body, separators=(",", ":")).encode()
    if style == "spaced":  # the Python client's json.dumps
        return json.dumps(body).encode()
    # every non-ASCII character escaped, and the flag's own name written with a \u escape
    return json.dumps(body).replace('"enable"', '"\\u0065nable"').encode()


@pytest.fixture(scope="module")
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def records(provider: Provider) -> Iterator[httpx.Client]:
    """The stand-in's record endpoints over one kept-alive connection (300 examples, 600 calls)."""
    with httpx.Client(base_url=provider.url, timeout=15, trust_env=False) as client:
        yield client


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies(), style=st.sampled_from(["compact", "spaced", "escaped"]),
       key=st.sampled_from(["issued-live", "passthrough"]), prefix=st.sampled_from(["", "/sendgrid"]))
def test_a_request_with_sandbox_mode_not_false_never_reaches_the_provider(
    http: httpx.Client, keys: Keys, records: httpx.Client, body: dict[str, Any], style: str, key: str, prefix: str
) -> None:
    records.delete("/__records")
    token = keys.sendgrid_live if key == "issued-live" else SENDGRID_PASSTHROUGH
    response = http.post(prefix + "/v3/mail/send", content=encode(body, style),
                         headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    assert response.status_code in (200, 400), response.text
    assert response.headers["content-type"] == "application/json"
    if response.status_code == 200:  # only a true flag on a valid body is answered
        assert body["mail_settings"]["sandbox_mode"]["enable"] is True
    assert [r for r in records.get("/__records").json() if not r["path"].endswith("/v3/scopes")] == []
