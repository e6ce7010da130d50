"""Policy loading: policies/ loads; every broken policy fails with ``file: key.path: message``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.policy.loader import PolicyError, load_policies, load_policy

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "version": 1,
    "name": "demo",
    "upstream": {"base_url": "https://api.example.com/"},
    "prefixes": ["/demo", ""],
    "keys": {"header": "X-Api-Key", "issued_prefix": {"live": "dk_live_", "test": "dk_test_"}},
    "dialect": {"error": {"code": "{{ error.code }}", "message": "{{ error.message }}"}},
    "test_mode": {"triggers": [{"body": "test_mode"}], "envelope": {"data": "{{ data }}"}},
    "x-notes": {"anything": "goes"},
    "routes": [
        {"id": "things.create", "method": "POST", "path": "/v1/things", "scope": "things:write",
         "test_response": {"status": 201, "data": {"id": "{{ uuid() }}"}}},
        {"id": "things.get", "method": "GET", "path": "/v1/things/{id}", "scope": "read",
         "test_response": {"status": 200, "body": {"id": "{{ path.id }}"}}},
    ],
}

Mutation = Callable[[dict[str, Any]], None]


def write(directory: Path, doc: dict[str, Any], name: str = "demo.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def mutated(mutation: Mutation) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    mutation(doc)
    return doc


def route(doc: dict[str, Any], index: int = 0) -> dict[str, Any]:
    routes: list[dict[str, Any]] = doc["routes"]
    return routes[index]


def test_the_shipped_policies_load() -> None:
    policies = load_policies(ROOT / "policies")
    sent = policies.by_name("sent")
    assert sent is not None
    assert sent.base_url == "https://api.sent.dm"
    assert sent.keys.header == "x-api-key"
    assert (sent.keys.issued_live_prefix, sent.keys.issued_test_prefix) == ("sk_live_gw_", "sk_test_gw_")
    assert len({r.id for r in sent.route_list}) == len(sent.route_list) > 10
    found = sent.match("POST", "/v3/messages")
    assert found is not None and found[0].id == "messages.send"


def test_a_valid_policy_compiles_with_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, BASE))
    assert policy.name == "demo"
    assert policy.source == str(tmp_path / "demo.yaml")
    assert policy.base_url == "https://api.example.com"
    assert policy.keys.header == "x-api-key"
    assert policy.keys.scheme == "raw"
    assert policy.keys.passthrough is None
    assert policy.test_request_id_prefix == "req_test_"
    assert policy.test_headers == [(b"x-test-mode", b"true")]
    assert [t.name for t in policy.body_triggers] == ["test_mode"]
    assert policy.methods == {"POST", "GET", "HEAD"}  # the routes' methods, and HEAD where GET is
    assert policy.allow == "GET, HEAD, POST"
    # misplaced names derive from the triggers: the key and its x- form, in every header spelling
    assert policy.misplaced_headers == {"test-mode", "test_mode", "x-test-mode", "x-test_mode", "x_test-mode",
                                        "x_test_mode"}
    assert policy.misplaced_query == {"test_mode", "x_test_mode"}
    found = policy.match("GET", "/v1/things/t_1")
    assert found is not None
    get, params = found
    assert params == {"id": "t_1"}
    variant = get.response_for({"path": params})
    assert variant is not None and variant.body is not None
    assert (variant.status, variant.body({"path": params})) == (200, {"id": "t_1"})


@pytest.mark.parametrize(
    ("mutation", "where", "message"),
    [
        # unknown keys
        (lambda d: d.update(bogus=1), "(top)", "'bogus' does not match any of the regexes: '^x-'"),
        (lambda d: route(d).update(bogus=1), "routes.0", "'bogus' was unexpected"),
        (lambda d: d["keys"].update(scheme="basic"), "keys.scheme", "'basic' is not one of ['raw', 'bearer']"),
        (lambda d: d["upstream"].update(timeout=3), "upstream", "'timeout' was unexpected"),
        # missing and wrongly typed values
        (lambda d: d.pop("routes"), "(top)", "'routes' is a required property"),
        (lambda d: d.update(version=2), "version", "1 was expected"),
        (lambda d: d.update(name=5), "name", "5 is not of type 'string'"),
        (lambda d: d.update(name="Demo"), "name", "does not match"),
        (lambda d: d["upstream"].update(base_url="ftp://x"), "upstream.base_url", "does not match"),
        (lambda d: d["upstream"].update(base_url="https://u:p@api.example.com"), "upstream.base_url",
         "without credentials"),
        (lambda d: d["upstream"].update(base_url="https://api.example.com%2f@evil"), "upstream.base_url",
         "must be http(s)://host"),
        (lambda d: d["upstream"].update(base_url="https://api.example.com/?x=1"), "upstream.base_url", "query"),
        (lambda d: d["upstream"].update(connect_timeout="5"), "upstream.connect_timeout", "is not of type 'number'"),
        (lambda d: d.update(routes={"id": "x"}), "routes", "is not of type 'array'"),
        (lambda d: route(d).update(method="FETCH"), "routes.0.method", "'FETCH' is not one of"),
        (lambda d: route(d).update(path="v1/things"), "routes.0.path", "does not match"),
        (lambda d: route(d, 1).update(id="Things Get"), "routes.1.id", "does not match"),
        (lambda d: d["test_mode"].update(triggers=[]), "test_mode.triggers", "should be non-empty"),
        # templates
        (lambda d: route(d)["test_response"]["data"].update(x="{{ foo() }}"), "routes.0.test_response.0.data.x",
         "unknown function foo()"),
        (lambda d: route(d, 1)["test_response"]["body"].update(x="{{ path.id | shout }}"),
         "routes.1.test_response.0.body.x", "unknown filter 'shout'"),
        (lambda d: route(d)["test_response"].update(when="uuid("), "routes.0.test_response.0.when",
         "cannot parse expression"),
        (lambda d: route(d)["test_response"].update(headers={"X-A": "{{ nope() }}"}),
         "routes.0.test_response.0.headers.X-A", "unknown function nope()"),
        (lambda d: d["dialect"].update(error={"m": "{{ error.code | upper(2) }}"}), "dialect.error.m",
         "filter upper does not take [2]"),
        (lambda d: d["test_mode"].update(envelope={"$each": "x"}), "test_mode.envelope", "missing ['$template']"),
        (lambda d: d["test_mode"].pop("envelope"), "routes.0.test_response.0.data", "'data' needs test_mode.envelope"),
        (lambda d: route(d)["test_response"].update(body={}), "routes.0.test_response.0",
         "either 'data' (wrapped in test_mode.envelope) or 'body'"),
        (lambda d: route(d)["test_response"].pop("data"), "routes.0.test_response.0",
         "a response other than 204 needs 'data' or 'body'"),
        # schemas
        (lambda d: route(d).update(schema={"type": "strng"}), "routes.0.schema",
         "is not valid under any of the given schemas"),
        (lambda d: route(d).update(schema={"$ref": "#/$defs/nope"}), "routes.0.schema", "Unresolvable ref"),
        (lambda d: route(d).update(schema={"properties": {"a": {"pattern": "("}}}), "routes.0.schema",
         "is not a 'regex'"),
        # rules
        (lambda d: route(d).update(rules=[{"rule": "no_such_rule"}]), "routes.0.rules.0",
         "unknown rule 'no_such_rule'"),
        # routes
        (lambda d: route(d, 1).update(id="things.create"), "routes", "duplicate route id(s): things.create"),
        (lambda d: route(d, 1).update(method="POST", path="/v1/things"), "routes",
         "POST /v1/things is declared twice"),
        (lambda d: d["routes"].append({**route(d, 1), "id": "things.other", "path": "/v1/things/{thing}"}),
         "routes", "GET /v1/things/{thing} is declared twice"),
        (lambda d: route(d, 1).update(path="/v1/things/{id}.json"), "routes.1.path", "bad segment"),
        (lambda d: route(d, 1).update(path="/v1/{id}/{id}"), "routes.1.path", "parameter {id} appears twice"),
        (lambda d: route(d).update(path="/v1/things:batch"), "routes.0.path",
         "literal segments may hold only letters, digits and - . _ ~"),
        (lambda d: route(d).update(path="/v1/th%69ngs"), "routes.0.path", "literal segments may hold only"),
        # keys
        (lambda d: d["keys"].update(issued_prefix={"live": "dk_", "test": "dk_"}), "keys.issued_prefix",
         "must differ and not contain each other"),
        (lambda d: d["keys"].update(issued_prefix={"live": "dk_", "test": "dk_test_"}), "keys.issued_prefix",
         "must differ and not contain each other"),
        (lambda d: d["keys"].update(issued_prefix={"live": "dk_live_x", "test": "dk_live"}), "keys.issued_prefix",
         "must differ and not contain each other"),
        (lambda d: d["keys"].update(passthrough={"verify_path": "/v1/me"}), "keys.shapes",
         "required with keys.passthrough"),
        (lambda d: d["keys"].update(shapes={}), "keys.shapes", "is not valid under any of the given schemas"),
        (lambda d: d["keys"].update(shapes={"live": []}), "keys.shapes.live", "should be non-empty"),
        (lambda d: d["keys"].update(shapes={"live": [""]}), "keys.shapes.live.0", "should be non-empty"),
        (lambda d: d["keys"].update(shapes={"live": ["dk_"], "pattern": "dk_("}), "keys.shapes.pattern",
         "not a regular expression"),
        # a test key shape that is not a test trigger would let a provider's test key be forwarded live
        (lambda d: d["keys"].update(shapes={"test": ["pk_test_"]}), "keys.shapes.test.0",
         "'pk_test_' is not a test trigger: add {key_prefix: pk_test_} to test_mode.triggers"),
        # test mode
        (lambda d: d["test_mode"]["triggers"].append({"body": "Test-Mode"}), "test_mode.triggers",
         "trigger keys 'test_mode', 'Test-Mode' differ only in case or '-'/'_'"),
        (lambda d: d["test_mode"].update(misplaced={"query": ["sandbox[]"]}), "test_mode.misplaced.query.0",
         "does not match"),
        # dialect
        (lambda d: d["dialect"].update(codes={"unauthorised": "AUTH_001"}), "dialect.codes.unauthorised",
         "unknown error code"),
        (lambda d: d["dialect"].update(messages={"nope": "x"}), "dialect.messages.nope", "unknown error code"),
        (lambda d: d["dialect"].update(headers={"teapot": {"x": "y"}}), "dialect.headers.teapot",
         "expected a status code, an error code or 'default'"),
        # idempotency
        (lambda d: d.update(idempotency={"key_pattern": "[a-"}), "idempotency.key_pattern",
         "not a regular expression"),
        (lambda d: d.update(idempotency={"mismatch_status": 418}), "idempotency.mismatch_status", "is not one of"),
        (lambda d: d.update(idempotency={"header": "Idempotency Key"}), "idempotency.header", "does not match"),
        (lambda d: d.update(idempotency={"forward": "yes"}), "idempotency.forward", "is not of type 'boolean'"),
    ],
)
def test_a_broken_policy_fails_with_file_key_path_and_message(
    tmp_path: Path, mutation: Mutation, where: str, message: str
) -> None:
    path = write(tmp_path, mutated(mutation))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: {where}: ")
    assert message in str(caught.value)
    with pytest.raises(PolicyError) as through_directory:
        load_policies(tmp_path)
    assert str(through_directory.value) == str(caught.value)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("version: 1\nname: demo\nname: again\n", "line 3", "duplicate key 'name'"),
        ("version: 1\nkeys:\n  header: a\n  header: b\n", "line 4", "duplicate key 'header'"),
        ("version: 1\nname: [unclosed\n", "line 3", ""),
        ("- just\n- a list\n", "(top)", "a policy must be a mapping"),
        ("", "(top)", "a policy must be a mapping"),
    ],
)
def test_yaml_problems_name_the_file_and_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: {where}: ")
    assert message in str(caught.value)


def test_yaml_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "sent.yaml").read_text()
    assert "<<: *" in text  # the shipped policy relies on this
    path = tmp_path / "demo.yaml"
    path.write_text(
        yaml.safe_dump({k: v for k, v in BASE.items() if k != "routes"}, sort_keys=False)
        + "x-base: &base {id: things.get, method: GET, path: '/v1/things/{id}', scope: read,"
          " test_response: {status: 204}}\n"
        + "routes:\n  - <<: *base\n    scope: things:read\n"
    )
    policy = load_policy(path)
    assert [(r.id, r.scope) for r in policy.route_list] == [("things.get", "things:read")]


def test_a_missing_file_and_an_empty_directory_are_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: \(file\): "):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match=r": \(dir\): no policy files"):
        load_policies(tmp_path)


def test_two_files_with_one_policy_name_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, BASE, "a.yaml")
    second = write(tmp_path, BASE, "b.yaml")
    with pytest.raises(PolicyError, match=rf"^{second}: name: policy name 'demo' is used twice$"):
        load_policies(tmp_path)


@pytest.mark.parametrize(
    ("file_name", "upstreams", "base_url"),
    [
        ("demo.yaml", {}, "https://api.example.com"),
        ("demo.yaml", {"demo": "http://127.0.0.1:9000/"}, "http://127.0.0.1:9000"),
        ("provider.yaml", {"demo": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000"),
        ("demo.yaml", {"other": "http://127.0.0.1:9000"}, "https://api.example.com"),
        # the override belongs to the policy named like the file, not to the file
        ("provider.yaml", {"provider": "http://127.0.0.1:9000"}, "https://api.example.com"),
        ("provider.yaml", {"provider": "http://127.0.0.1:1", "demo": "http://127.0.0.1:2"}, "http://127.0.0.1:2"),
    ],
)
def test_the_upstream_is_overridden_by_policy_name(
    tmp_path: Path, file_name: str, upstreams: dict[str, str], base_url: str
) -> None:
    write(tmp_path, BASE, file_name)
    policy = load_policies(tmp_path, upstreams).by_name("demo")
    assert policy is not None
    assert policy.base_url == base_url


def test_mounts_are_sorted_longest_prefix_first(tmp_path: Path) -> None:
    write(tmp_path, mutated(lambda d: d.update(prefixes=["/d", ""])), "a.yaml")
    write(tmp_path, mutated(lambda d: d.update(name="other", prefixes=["/other", "/o/long/prefix"])), "b.yaml")
    write(tmp_path, mutated(lambda d: d.update(name="third", prefixes=["/third"])), "c.yaml")
    policy_set = load_policies(tmp_path)
    assert [(prefix, p.name) for prefix, p in policy_set.mounts] == [
        ("/o/long/prefix", "other"), ("/other", "other"), ("/third", "third"), ("/d", "demo"), ("", "demo"),
    ]
    assert [p.name for p in policy_set.policies] == ["demo", "other", "third"]


def test_key_shapes_compile(tmp_path: Path) -> None:
    def shaped(d: dict[str, Any]) -> None:
        d["keys"].update(shapes={"live": ["pk_live_"], "test": ["pk_test_"], "pattern": "pk_(live|test)_[a-z]{4}"},
                         passthrough={"verify_path": "/v1/me"})
        d["test_mode"]["triggers"].append({"key_prefix": "pk_test_"})

    shape = load_policy(write(tmp_path, mutated(shaped))).keys.shape
    assert [shape.kind(k) for k in ("pk_live_abcd", "pk_test_abcd", "dk_live_x", "pk_live_abc", "pk_live_abcde",
                                     "sk_live_abcd")] == ["provider", "provider", "issued", None, None, None]
    assert load_policy(write(tmp_path, BASE)).keys.shape.kind("pk_live_abcd") is None  # no shapes: issued keys only


@pytest.mark.parametrize(("other", "overlap"), [
    ({"issued_prefix": {"live": "ok_live_", "test": "ok_test_"}}, None),
    ({"issued_prefix": {"live": "dk_live_", "test": "ok_test_"}}, "'dk_live_'"),
    ({"issued_prefix": {"live": "ok_live_", "test": "ok_test_"}, "shapes": {"live": ["dk_"]}}, "'dk_'"),
    ({"issued_prefix": {"live": "ok_live_", "test": "ok_test_"}, "shapes": {"live": ["dk_live_gw"]}}, "'dk_live_gw'"),
])
def test_policies_sharing_a_prefix_need_key_shapes_that_do_not_overlap(
    tmp_path: Path, other: dict[str, Any], overlap: str | None
) -> None:
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, mutated(lambda d: d.update(name="other", prefixes=["/other", ""], keys={"header": "x-other",
                                                                                           **other})), "b.yaml")
    if overlap is None:
        assert len(load_policies(tmp_path).policies) == 2
        return
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'b.yaml'}: keys: key prefix {overlap} overlaps demo's ")
    assert "at the shared mount prefix ''" in str(caught.value)
    # Mounted apart, the same prefixes are fine: the mount prefix tells them apart.
    write(tmp_path, mutated(lambda d: d.update(name="other", prefixes=["/other"], keys={"header": "x-other",
                                                                                       **other})), "b.yaml")
    assert len(load_policies(tmp_path).policies) == 2


def test_one_file_can_be_loaded_as_a_policy_set(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    write(tmp_path, mutated(lambda d: d.update(name=5)), "broken.yaml")
    policy_set = load_policies(path)
    assert [p.name for p in policy_set.policies] == ["demo"]


def test_the_idempotency_section_compiles_with_its_defaults(tmp_path: Path) -> None:
    default = load_policy(write(tmp_path, mutated(lambda d: None))).idempotency
    assert (default.header, default.forward, default.mismatch_status, default.retry_after) == (
        "idempotency-key", True, 422, 1)
    assert default.key_problem("any.printable:ASCII{key}") is None and default.key_problem("a b") is not None
    assert b"x-test-mode" in default.replay_headers  # the policy's test-mode headers are always replayed
    spec = load_policy(write(tmp_path, mutated(lambda d: d.update(idempotency={
        "header": "X-Request-Key", "key_pattern": "[0-9]+", "forward": False, "replay_headers": ["X-Message-Id"],
    })))).idempotency
    assert (spec.header, spec.name, spec.forward) == ("x-request-key", "X-Request-Key", False)
    assert spec.key_problem("123") is None and spec.key_problem("12a") == "must be 1-255 characters matching [0-9]+"
    assert b"x-message-id" in spec.replay_headers
