"""The test-mode invariant, property-based, through the real server and the recording stand-in provider.

For generated requests on every Sent mutation route (policies/sent.yaml) — valid bodies, mangled
bodies and arbitrary objects, sent as raw bytes in varied JSON layouts, flagged in four styles (a ``true``
flag, a wrong-typed flag, a flag key given twice, JSON cut short) — each example sends four *test*
requests:

1. an issued live key with a body flag (``test_mode`` / ``sandbox``),
2. an issued test key with the same body,
3. the provider's own ``sk_test_`` key (pass-through, verified once beforehand) with the same body,
4. a test key (issued or pass-through) with the flags removed: the key alone makes it a test,

and then the same request unflagged with a live key (issued, or the provider's own). The provider must
record exactly one request per example — the live one — with the very bytes that were sent.
"""

from __future__ import annotations

import base64
import json
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from proxy.policy.loader import load_policy
from proxy.policy.model import Route
from proxy.stages.idempotency import derived_key
from tests.conftest import PASSTHROUGH_LIVE, PASSTHROUGH_TEST, PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import error, simulated
from tests.support.servers import POLICIES, Gateway, Provider

SENT_FILE = POLICIES / "sent.yaml"
MUTATIONS = [r for r in load_policy(SENT_FILE).route_list if r.method not in ("GET", "HEAD")]
# Examples per route and flag style (each example sends 4 test requests). Routes and styles are
# parameters, not draws: Hypothesis draws from a list very unevenly, and every pair must be covered.
# Sent's message send, the route that costs money, gets three times as many.
STYLES = {"true": 12, "wrong": 5, "duplicate": 2, "malformed": 2}
EXAMPLES = {(r.id, style): n * (3 if r.id == "messages.send" else 1) for r in MUTATIONS for style, n in STYLES.items()}
assert 4 * sum(EXAMPLES.values()) >= 2000
FLAGS = ("test_mode", "sandbox")
WRONG_FLAGS: list[Any] = ["true", "false", "True", 1, 0, 1.0, None, "yes", "", [], {}, [True], {"enabled": True}]
ABSENT: Any = object()


def _schema_properties(node: Any) -> set[str]:
    """Every property name a route's schema mentions, at any depth of if/then/else/anyOf."""
    found: set[str] = set()
    if isinstance(node, dict):
        found.update(k for k in node.get("properties", {}) if isinstance(node.get("properties"), dict))
        for key in ("then", "else", "if"):
            found |= _schema_properties(node.get(key))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                found |= _schema_properties(sub)
    return found


_DOC = yaml.safe_load(SENT_FILE.read_text())
PROPERTIES = {r["id"]: sorted(_schema_properties(r.get("schema")) - set(FLAGS)) for r in _DOC["routes"]}

# ---------------------------------------------------------------- strategies

json_scalar = (st.none() | st.booleans() | st.integers(-(10**18), 10**18)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
json_object = st.dictionaries(st.text(max_size=6), json_value, max_size=3)
text1 = st.text(min_size=1, max_size=24)
e164 = st.builds(lambda first, rest: f"+{first}{rest}", st.integers(1, 9), st.text(string.digits, min_size=1,
                                                                                     max_size=14))
https_url = st.builds(lambda host, path: f"https://{host}.example.com/{path}",
                      st.text(string.ascii_lowercase, min_size=1, max_size=10),
                      st.text(string.ascii_lowercase + string.digits + "/-_", max_size=12))
email = st.builds(lambda local, domain: f"{local}@{domain}.com",
                  st.text(string.ascii_letters + string.digits + "._+", min_size=1, max_size=10),
                  st.text(string.ascii_lowercase, min_size=1, max_size=10))
channel = st.sampled_from(["sent", "sms", "whatsapp", "rcs", "mms"])
role = st.sampled_from(["admin", "billing", "developer", "member", "viewer"])
category = st.sampled_from(["MARKETING", "UTILITY", "AUTHENTICATION", None])
date_time = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())


def _opt(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return value | st.none()


def _fields(required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional or {})


_webhook = {"display_name": st.text(max_size=40), "event_types": st.lists(text1, max_size=3),
            "event_filters": _opt(json_object), "retry_count": st.integers(0, 10),
            "timeout_seconds": st.integers(1, 60), "sender_profile": _opt(json_object)}
_profile = {"short_name": _opt(st.text(max_size=32)), "description": _opt(st.text(max_size=40)),
            "icon": _opt(https_url), "billing_model": _opt(st.sampled_from(["organization", "profile"])),
            "billing_contact": _opt(json_object), "brand": _opt(json_object), "payment_details": _opt(json_object),
            "whatsapp_business_account": _opt(_fields({"access_token": text1, "waba_id": text1})),
            **{name: _opt(st.booleans()) for name in (
                "allow_contact_sharing", "allow_template_sharing", "inherit_contacts", "inherit_tcr_brand",
                "inherit_tcr_campaign", "inherit_templates")}}
_template = {"category": category, "language": _opt(st.text(min_size=2, max_size=16)),
             "submit_for_review": st.booleans()}
_NOTHING: st.SearchStrategy[dict[str, Any]] = st.just({})

# route id -> (valid bodies, the status a test request with such a body is answered with)
VALID: dict[str, list[tuple[st.SearchStrategy[dict[str, Any]], int]]] = {
    "messages.send": [
        (_fields({"phone_number": e164, "template_id": text1},
                 {"variables": json_object, "channel": channel}), 201),
        (_fields({"to": st.lists(e164, min_size=1, max_size=5), "text": text1},
                 {"channel": st.lists(channel, max_size=3), "subject": _opt(st.text(max_size=64)),
                  "scheduled_at": date_time, "media_urls": st.lists(https_url, max_size=2)}), 202),
        (_fields({"to": st.lists(e164, min_size=1, max_size=5),
                  "template": _fields({"id": text1}, {"name": text1, "parameters": json_object})
                  | _fields({"name": text1}, {"parameters": json_object})},
                 {"channel": st.lists(channel, max_size=3)}), 202),
    ],
    "contacts.create": [(_fields({"phone_number": e164}), 201)],
    "contacts.update": [(_fields({}, {"default_channel": st.sampled_from(["sms", "whatsapp", "rcs", None]),
                                      "opt_out": _opt(st.booleans())}), 200)],
    "contacts.delete": [(_NOTHING, 204)],
    "templates.create": [(_fields({}, {**_template, "definition": json_object, "auto_create_for_sp": st.booleans(),
                                       "creation_source": _opt(text1)}), 201)],
    "templates.update": [(_fields({}, {**_template, "name": _opt(text1), "definition": _opt(json_object)}), 200)],
    "templates.delete": [(_NOTHING, 204)],
    "webhooks.create": [(_fields({"endpoint_url": https_url}, _webhook), 201)],
    "webhooks.update": [(_fields({}, {"endpoint_url": https_url, **_webhook}), 200)],
    "webhooks.delete": [(_NOTHING, 204)],
    "webhooks.rotate_secret": [(_NOTHING, 200)],
    "webhooks.test": [(_fields({}, {"event_type": st.text(max_size=20)}), 200)],
    "webhooks.toggle_status": [(_fields({}, {"is_active": st.booleans()}), 200)],
    "profiles.create": [(_fields({"name": text1}, _profile), 201)],
    "profiles.update": [(_fields({}, {"name": text1, **_profile}), 200)],
    "profiles.delete": [(_NOTHING, 204)],
    "profiles.complete": [(_fields({"webHookUrl": https_url}), 200)],
    "profiles.campaigns.create": [(_fields({"campaign": json_object}), 201)],
    "profiles.campaigns.update": [(_fields({"campaign": json_object}), 200)],
    "profiles.campaigns.delete": [(_NOTHING, 204)],
    "brands.create": [(_fields({}, {"business": json_object, "contact": json_object, "compliance": json_object}),
                       201)],
    "users.invite": [(_fields({"email": email}, {"name": st.text(max_size=40), "role": role}), 201)],
    "users.update_role": [(_fields({"role": role}), 200)],
    "users.remove": [(_NOTHING, 204)],
}
# Routes refused in test mode on purpose (voice: `refused_in_test_mode` in the policy): 404 RESOURCE_002.
REFUSED = {r.id for r in MUTATIONS if not r.responses}
VALID |= {route_id: [(_NOTHING, 404)] for route_id in REFUSED}


@dataclass
class Case:
    route_id: str  # an id, not the compiled Route: Hypothesis prints every field of a failing case
    method: str
    path: str
    body: dict[str, Any]  # without flags
    kind: str  # valid | mangled | arbitrary
    status: int  # for a valid body
    style: str  # how the test body is flagged: true | wrong | duplicate | malformed
    flags: dict[str, Any]  # name -> value, at least one of them True or wrong-typed
    live_false_flags: bool  # the live twin says `"<flag>": false` explicitly
    layout: dict[str, Any]
    key_order: list[str]
    truncate: int | None  # malformed: cut the bodies to this many bytes
    headers: dict[str, str]
    live_key: str  # "issued" | "passthrough"
    keyed_test: str  # the key for request 4: "issued" | "passthrough"

    def statuses(self) -> set[int]:
        return {status for _, status in VALID[self.route_id]}



def _dumps(obj: dict[str, Any], order: list[str], layout: dict[str, Any]) -> bytes:
    ordered = {k: obj[k] for k in order if k in obj} | obj
    return json.dumps(ordered, **layout).encode()


@st.composite
def cases(draw: st.DrawFn, route: Route, style: str) -> Case:
    params = {name: draw(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=24))
              for name in route.path.names}
    path = route.path.text
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    valid_strategy, status = draw(st.sampled_from(VALID[route.id]))
    kind = draw(st.sampled_from(["valid", "valid", "mangled", "arbitrary"]))
    body = draw(valid_strategy)
    if kind == "mangled":
        names = PROPERTIES[route.id] or ["extra"]
        body = {**body, **draw(st.dictionaries(st.sampled_from(names), json_value, min_size=1, max_size=2))}
        body |= draw(st.dictionaries(st.text(max_size=6), json_value, max_size=2))
    elif kind == "arbitrary":
        names = PROPERTIES[route.id] or ["extra"]
        body = draw(st.dictionaries(st.sampled_from(names) | st.text(max_size=6), json_value, max_size=5))
    first = draw(st.sampled_from(FLAGS))
    second = next(f for f in FLAGS if f != first)
    wrong = st.sampled_from(WRONG_FLAGS)
    first_value = {"true": st.just(True), "wrong": wrong}.get(style, st.just(True) | wrong)
    flags = {first: draw(first_value)}
    other = draw(st.sampled_from([ABSENT, False, True]) | (st.nothing() if style == "true" else wrong))
    if other is not ABSENT:
        flags[second] = other
    keys = [*body, *flags]
    headers: dict[str, str] = draw(st.fixed_dictionaries({}, optional={
        "Idempotency-Key": st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40),
        "x-profile-id": st.uuids().map(str),
        "X-Custom-Trace": st.text(string.ascii_letters + string.digits, min_size=1, max_size=16),
    }))
    return Case(
        route_id=route.id, method=route.method, path=path, body=body, kind=kind, status=status, style=style,
        flags=flags,
        live_false_flags=draw(st.booleans()),
        layout=draw(st.fixed_dictionaries({
            "separators": st.sampled_from([(",", ":"), (", ", ": "), (",", ": ")]),
            "indent": st.sampled_from([None, None, 2, "\t"]),
            "ensure_ascii": st.booleans(),
        })),
        key_order=draw(st.permutations(keys)),
        truncate=draw(st.integers(1, 10_000)) if style == "malformed" else None,
        headers=headers,
        live_key=draw(st.sampled_from(["issued", "passthrough"])),
        keyed_test=draw(st.sampled_from(["issued", "passthrough"])),
    )


def _test_body(case: Case) -> bytes:
    raw = _dumps({**case.body, **case.flags}, case.key_order, case.layout)
    if case.style == "duplicate":
        name = next(iter(case.flags))
        # The same key once more, first: parsers disagree on which one wins, so the gateway must refuse.
        raw = b'{"' + name.encode() + b'": false, ' + raw[1:]
    if case.truncate is not None:
        raw = raw[: min(case.truncate, len(raw) - 1)]
    return raw


# ---------------------------------------------------------------- the test


@dataclass
class Tally:
    examples: int = 0
    test_requests: int = 0
    simulated: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    live: int = 0


def _check_test_answer(case: Case, response: httpx.Response, *, flagged: bool, tally: Tally) -> None:
    assert response.status_code < 500, response.text
    if case.truncate is not None:
        error(response, 400, "VALIDATION_002")
    elif flagged and case.style == "duplicate":
        error(response, 400, "VALIDATION_006")
    elif flagged and any(v is not True and v is not False for v in case.flags.values()):
        error(response, 400, "VALIDATION_005")
    elif case.route_id in REFUSED:
        error(response, 404, "RESOURCE_002")
    elif case.kind == "valid" or response.status_code in case.statuses():
        expected = case.status if case.kind == "valid" else response.status_code
        if expected == 204:
            assert response.status_code == 204, response.text
            assert response.content == b""
            assert response.headers["x-test-mode"] == "true"
            assert response.headers["x-request-id"].startswith("req_test_")
        else:
            simulated(response, expected)
        tally.simulated += 1
        return
    else:
        error(response, 400, "VALIDATION_001")
        assert response.headers["x-test-mode"] == "true"
    code = response.json()["error"]["code"]
    tally.refused[code] = tally.refused.get(code, 0) + 1


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("route", MUTATIONS, ids=[r.id for r in MUTATIONS])
def test_test_requests_never_reach_the_provider_and_live_twins_arrive_once_byte_identical(
    route: Route, style: str, gateway: Gateway, keys: Keys, provider: Provider, client: httpx.Client
) -> None:
    provider.configure(me_status=None)
    # Pass-through keys are verified once with GET /v3/me (a read the provider records): warm both.
    for key in (PASSTHROUGH_TEST, PASSTHROUGH_LIVE):
        assert client.get("/v3/me", headers={"x-api-key": key}).status_code == 200
    provider.clear()
    tally = Tally()
    test_keys = {"issued": keys.sent_test, "passthrough": PASSTHROUGH_TEST}
    live_keys = {"issued": keys.sent_live, "passthrough": PASSTHROUGH_LIVE}

    # No shrinking: against real servers it takes minutes per failure; the failing case is reported as is.
    @settings(max_examples=EXAMPLES[route.id, style], deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases(route, style))
    def run(case: Case) -> None:
        tally.examples += 1

        def headers(api_key: str) -> dict[str, str]:
            """Each request its own Idempotency-Key: replays are tests/e2e/test_idempotency.py's subject."""
            found = {**case.headers, "content-type": "application/json", "x-api-key": api_key}
            if "Idempotency-Key" in found:
                found["Idempotency-Key"] += "-" + uuid.uuid4().hex
            return found

        flagged = _test_body(case)
        for key in (keys.sent_live, keys.sent_test, PASSTHROUGH_TEST):
            response = client.request(case.method, case.path, content=flagged, headers=headers(key))
            _check_test_answer(case, response, flagged=True, tally=tally)
        unflagged = _dumps(case.body, case.key_order, case.layout)
        if case.truncate is not None:
            unflagged = unflagged[: min(case.truncate, len(unflagged) - 1)]
        response = client.request(case.method, case.path, content=unflagged,
                                  headers=headers(test_keys[case.keyed_test]))
        _check_test_answer(case, response, flagged=False, tally=tally)
        tally.test_requests += 4

        if case.truncate is not None:  # malformed even without flags: a live key is refused just the same
            response = client.request(case.method, case.path, content=unflagged,
                                      headers=headers(live_keys[case.live_key]))
            error(response, 400, "VALIDATION_002")
            assert provider.records() == []
            return
        live_body = {**case.body, **({name: False for name in case.flags} if case.live_false_flags else {})}
        raw = _dumps(live_body, case.key_order, case.layout)
        live_headers = headers(live_keys[case.live_key])
        response = client.request(case.method, case.path, content=raw, headers=live_headers)
        assert response.status_code == 201, response.text  # the stand-in's own answer, passed back
        assert response.headers["x-standin"] == "1"
        assert response.json()["data"]["echo"] == {"method": case.method, "path": case.path, "size": len(raw)}
        records = provider.records()
        assert len(records) == 1, [(r["method"], r["path"]) for r in records]
        [record] = records
        assert (record["method"], record["raw_path"], record["query"]) == (case.method, case.path, "")
        assert base64.b64decode(record["body"]) == raw
        forwarded = dict(record["headers"])
        assert forwarded["x-api-key"] == (PROVIDER_CREDENTIAL if case.live_key == "issued" else PASSTHROUGH_LIVE)
        for name in case.headers:
            value = live_headers[name]
            if name == "Idempotency-Key" and case.live_key == "issued":  # derived per issued key
                value = derived_key(keys.key_id(keys.sent_live), value)
            assert forwarded[name.lower()] == value
        provider.clear()
        tally.live += 1

    run()

    assert tally.examples == EXAMPLES[route.id, style], tally
    assert tally.test_requests == 4 * tally.examples
    if style == "true" and route.id not in REFUSED:  # not vacuous: test requests were answered with simulated data
        assert tally.simulated > 0, tally
    assert tally.live == (0 if style == "malformed" else tally.examples), tally
    assert provider.records() == []
