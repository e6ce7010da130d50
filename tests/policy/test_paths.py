"""Path templates and the (method, path) table: literals beat parameters, duplicates and bad templates refused."""

from __future__ import annotations

import pytest

from proxy.policy.paths import PathTable, PathTemplate, PathTemplateError

ROUTES = [
    ("POST", "/v3/messages"),
    ("GET", "/v3/messages/{id}"),
    ("GET", "/v3/contacts/{id}"),
    ("GET", "/v3/contacts/me"),
    ("PATCH", "/v3/contacts/{id}"),
    ("POST", "/v3/webhooks/{id}/test"),
    ("POST", "/v3/webhooks/{id}/{action}"),
    ("PUT", "/v3/profiles/{profile_id}/campaigns/{campaign_id}"),
    ("GET", "/v3/a/{x}/c"),
    ("GET", "/v3/a/b/{y}"),
]


@pytest.fixture(scope="module")
def table() -> PathTable[str]:
    return PathTable((method, PathTemplate.parse(path), f"{method} {path}") for method, path in ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("POST", "/v3/messages", "POST /v3/messages", {}),
        ("POST", "/v3/messages/", "POST /v3/messages", {}),
        ("GET", "/v3/messages/m_1", "GET /v3/messages/{id}", {"id": "m_1"}),
        ("GET", "/v3/messages/m_1/", "GET /v3/messages/{id}", {"id": "m_1"}),
        # a literal segment beats a parameter, whatever the declaration order
        ("GET", "/v3/contacts/me", "GET /v3/contacts/me", {}),
        ("GET", "/v3/contacts/me/", "GET /v3/contacts/me", {}),
        ("GET", "/v3/contacts/c_9", "GET /v3/contacts/{id}", {"id": "c_9"}),
        ("PATCH", "/v3/contacts/me", "PATCH /v3/contacts/{id}", {"id": "me"}),
        ("POST", "/v3/webhooks/w_1/test", "POST /v3/webhooks/{id}/test", {"id": "w_1"}),
        ("POST", "/v3/webhooks/w_1/rotate", "POST /v3/webhooks/{id}/{action}", {"id": "w_1", "action": "rotate"}),
        ("PUT", "/v3/profiles/p_1/campaigns/c_2", "PUT /v3/profiles/{profile_id}/campaigns/{campaign_id}",
         {"profile_id": "p_1", "campaign_id": "c_2"}),
        ("GET", "/v3/a/b/c", "GET /v3/a/b/{y}", {"y": "c"}),
        ("GET", "/v3/a/z/c", "GET /v3/a/{x}/c", {"x": "z"}),
        ("GET", "/v3/contacts/%2B1555", "GET /v3/contacts/{id}", {"id": "%2B1555"}),
    ],
)
def test_match(table: PathTable[str], method: str, path: str, route: str, params: dict[str, str]) -> None:
    assert table.match(method, path) == (route, params)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v3/messages"),  # declared for POST only
        ("post", "/v3/messages"),
        ("POST", "/v3/messages/extra"),
        ("POST", "/v3"),
        ("GET", "/v3/contacts"),
        ("GET", "/v3/contacts//"),
        ("GET", "/v3//c_1"),
        ("GET", "/v3/contacts/c_1/more"),
        ("POST", "/v3/webhooks//test"),
        ("GET", "/"),
        ("GET", ""),
    ],
)
def test_no_match(table: PathTable[str], method: str, path: str) -> None:
    assert table.match(method, path) is None


@pytest.mark.parametrize(
    ("text", "segments", "names"),
    [
        ("/v3/messages", ("v3", "messages"), ()),
        ("/v3/messages/", ("v3", "messages"), ()),
        ("/v3/contacts/{id}", ("v3", "contacts", None), ("id",)),
        ("/{a}/x/{b_2}", (None, "x", None), ("a", "b_2")),
    ],
)
def test_parse(text: str, segments: tuple[str | None, ...], names: tuple[str, ...]) -> None:
    template = PathTemplate.parse(text)
    assert (template.text, template.segments, template.names) == (text, segments, names)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v3/messages", "must start with '/'"),
        ("/v3/{id}/x/{id}", "parameter {id} appears twice"),
        ("/v3/{id}.json", "bad segment '{id}.json'"),
        ("/v3/{}", "bad segment '{}'"),
        ("/v3/{1id}", "bad segment '{1id}'"),
        ("/v3/{id", "bad segment '{id'"),
        ("/v3/id}", "bad segment 'id}'"),
        ("/v3//messages", "bad segment ''"),
    ],
)
def test_bad_templates_are_rejected(text: str, message: str) -> None:
    with pytest.raises(PathTemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        PathTemplate.parse(text)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("POST", "/v3/messages"), ("POST", "/v3/messages")),
        (("POST", "/v3/messages"), ("POST", "/v3/messages/")),
        (("GET", "/v3/contacts/{id}"), ("GET", "/v3/contacts/{id}")),
        (("GET", "/v3/contacts/{id}"), ("GET", "/v3/contacts/{contact_id}")),
    ],
)
def test_a_method_and_path_declared_twice_is_rejected(first: tuple[str, str], second: tuple[str, str]) -> None:
    with pytest.raises(PathTemplateError, match="declared twice"):
        PathTable([(first[0], PathTemplate.parse(first[1]), 1), (second[0], PathTemplate.parse(second[1]), 2)])


def test_one_path_under_two_methods_is_two_routes() -> None:
    table = PathTable([(m, PathTemplate.parse("/v3/contacts/{id}"), m) for m in ("GET", "PATCH", "DELETE")])
    assert [table.match(m, "/v3/contacts/c_1") for m in ("GET", "PATCH", "DELETE")] == [
        ("GET", {"id": "c_1"}), ("PATCH", {"id": "c_1"}), ("DELETE", {"id": "c_1"}),
    ]
