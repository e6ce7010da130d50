"""Load → validate → compile policy files (Caddy's provision/validate steps, done once at start-up).

Every problem is a :class:`PolicyError` worded ``file: key.path: message`` and stops start-up;
``testmode-proxy check`` reports the same errors and exits non-zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft7Validator

from proxy.errors import DIALECT
from proxy.keys.shapes import KeyShape
from proxy.policy.contract import ContractError, compile_contract
from proxy.policy.flagnames import compile_flag_paths, derived_misplaced, fold, header_spellings
from proxy.policy.format import POLICY_SCHEMA
from proxy.policy.idempotency import compile_idempotency
from proxy.policy.model import (
    BodyTrigger,
    Dialect,
    FlagPaths,
    Headers,
    KeySpec,
    Passthrough,
    Policy,
    PolicySet,
    ResponseVariant,
    Route,
)
from proxy.policy.paths import PathTable, PathTemplate, PathTemplateError
from proxy.policy.rules import RuleConfigError, compile_rule
from proxy.policy.template import Bindings, TemplateError, compile_condition, compile_template
from proxy.policy.validation import SchemaCompileError, bracket_path, compile_validator, dot_path
from proxy.sandbox.spec import compile_sandbox
from proxy.webhooks.policy import SpecError, WebhookSpec, compile_spec

# Engine codes a dialect may reword (dialect.codes / dialect.messages); see policies/README.md.
ERROR_CODES = tuple(DIALECT)


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")  # RFC 3986 §2.3


class PolicyError(ValueError):
    """A policy that cannot be used; ``str()`` is ``file: key.path: message``."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden on purpose
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _keypath(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(top)"


class _Compiler:
    def __init__(self, source: str, doc: dict[str, Any], upstream_override: str | None) -> None:
        self.source = source
        self.doc = doc
        self.upstream_override = upstream_override

    def fail(self, where: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}: {where}: {message}")

    def compile(self) -> Policy:
        doc = self.doc
        errors = sorted(Draft7Validator(POLICY_SCHEMA).iter_errors(doc), key=lambda e: list(map(str, e.path)))
        if errors:
            first = errors[0]
            raise self.fail(_keypath(first.absolute_path), first.message)
        dialect = self._dialect(doc["dialect"])
        test = doc["test_mode"]
        body_triggers, key_triggers = self._triggers(test["triggers"])
        keys = self._keys(doc["keys"], key_triggers)
        envelope = None
        if "envelope" in test:
            envelope = self._template(test["envelope"], "test_mode.envelope")
        envelope_node = (test["envelope"],) if envelope is not None else None
        definitions = doc.get("schemas", {})
        routes = tuple(self._route(i, r, definitions, dialect, envelope_node) for i, r in enumerate(doc["routes"]))
        try:
            table = PathTable((r.method, r.path, r) for r in routes)
        except PathTemplateError as exc:
            raise self.fail("routes", str(exc)) from exc
        ids = [r.id for r in routes]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise self.fail("routes", f"duplicate route id(s): {', '.join(dupes)}")
        upstream = doc["upstream"]
        flag_paths, misplaced_headers, misplaced_query = self._flag_names(body_triggers, test.get("misplaced", {}))
        live = doc.get("live", {})
        unmatched = doc.get("unmatched_scopes", {})
        test_headers = self._headers(test.get("response_headers", {"X-Test-Mode": "true"}))
        methods = _methods(routes, keys)
        try:
            contract = compile_contract(doc)
        except ContractError as exc:
            raise PolicyError(f"{self.source}: {exc}") from exc
        return Policy(
            name=doc["name"],
            source=self.source,
            base_url=self._base_url(self.upstream_override or upstream["base_url"]),
            connect_timeout=upstream.get("connect_timeout"),
            total_timeout=upstream.get("total_timeout"),
            prefixes=tuple(doc.get("prefixes", [""])),
            keys=keys,
            dialect=dialect,
            body_triggers=body_triggers,
            key_prefix_triggers=key_triggers,
            misplaced_headers=misplaced_headers,
            misplaced_query=misplaced_query,
            test_request_id_prefix=test.get("request_id_prefix", "req_test_"),
            live_request_id_prefix=live.get("request_id_prefix", "req_"),
            test_headers=test_headers,
            envelope=envelope,
            validate_live=bool(live.get("validate", False)),
            unmatched_read_scope=unmatched.get("read", "read"),
            unmatched_write_scope=unmatched.get("write", "write"),
            routes=table,
            route_list=routes,
            methods=methods,
            allow=", ".join(sorted(methods)),
            flag_paths=flag_paths,
            idempotency=compile_idempotency(doc.get("idempotency"), (name for name, _ in test_headers), self.fail),
            contract=contract,
            webhooks=self._webhooks(doc.get("webhooks")),
            sandbox=compile_sandbox(doc.get("sandbox"), routes, self.fail),
        )

    def _webhooks(self, node: Any) -> WebhookSpec | None:
        try:
            return compile_spec(node)
        except SpecError as exc:
            raise self.fail(f"webhooks.{exc.where}".rstrip("."), str(exc)) from exc

    def _base_url(self, text: str) -> str:
        """An origin (and optional path) that requests' paths are joined onto (proxy/forward.py)."""
        url = urlsplit(text)
        if url.scheme not in ("http", "https") or not url.hostname or url.username is not None or url.query \
                or url.fragment or "%" in url.netloc:
            raise self.fail("upstream.base_url", f"{text!r} must be http(s)://host[:port][/path], "
                                                 "without credentials, query or fragment")
        return text.rstrip("/")

    def _template(self, node: Any, where: str, bindings: Bindings | None = None) -> Any:
        try:
            return compile_template(node, where, bindings)
        except TemplateError as exc:
            raise PolicyError(f"{self.source}: {exc}") from exc

    def _headers(self, mapping: Mapping[str, str]) -> Headers:
        return [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in mapping.items()]

    def _dialect(self, node: dict[str, Any]) -> Dialect:
        for table in ("codes", "messages"):
            for code in node.get(table, {}):
                if code not in ERROR_CODES:
                    raise self.fail(f"dialect.{table}.{code}", f"unknown error code (known: {', '.join(ERROR_CODES)})")
        by_status: dict[int, Headers] = {}
        by_code: dict[str, Headers] = {}
        default: Headers = []
        for status, headers in node.get("headers", {}).items():
            if status == "default":
                default = self._headers(headers)
            elif str(status).isdigit():
                by_status[int(status)] = self._headers(headers)
            elif status in ERROR_CODES:
                by_code[status] = self._headers(headers)
            else:
                raise self.fail(f"dialect.headers.{status}", "expected a status code, an error code or 'default'")

        def over_default(headers: Headers) -> Headers:
            return default + [h for h in headers if h[0] not in {d[0] for d in default}]

        by_status = {status: over_default(headers) for status, headers in by_status.items()}
        by_code = {code: over_default(headers) for code, headers in by_code.items()}
        style = node.get("field_style", "dot")
        return Dialect(
            field_style=dot_path if style == "dot" else bracket_path,
            error=self._template(node["error"], "dialect.error"),
            codes=dict(node.get("codes", {})),
            messages=dict(node.get("messages", {})),
            headers=by_status,
            default_headers=default,
            by_code=by_code,
        )

    def _keys(self, node: dict[str, Any], key_triggers: tuple[str, ...]) -> KeySpec:
        passthrough = None
        if pt := node.get("passthrough"):
            passthrough = Passthrough(
                method=pt.get("verify_method", "GET"),
                path=pt["verify_path"],
                ttl_seconds=float(pt.get("ttl_seconds", 300)),
                negative_ttl_seconds=float(pt.get("negative_ttl_seconds", 30)),
                scopes=frozenset(pt.get("scopes", ["*"])),
            )
        issued = node.get("issued_prefix", {"live": "tmp_live_", "test": "tmp_test_"})
        if issued["live"] == issued["test"] or issued["live"].startswith(issued["test"]) or issued[
            "test"
        ].startswith(issued["live"]):
            raise self.fail("keys.issued_prefix", "live and test prefixes must differ and not contain each other")
        return KeySpec(
            header=node["header"].lower(),
            scheme=node.get("scheme", "raw"),
            conflicting_headers=tuple(h.lower() for h in node.get("conflicting_headers", [])),
            issued_live_prefix=issued["live"],
            issued_test_prefix=issued["test"],
            passthrough=passthrough,
            shape=self._shape(node, (issued["live"], issued["test"]), key_triggers),
        )

    def _shape(self, node: dict[str, Any], issued: tuple[str, str], key_triggers: tuple[str, ...]) -> KeyShape:
        """``keys.shapes``: without it only issued keys are accepted, so a pass-through policy needs one."""
        shapes = node.get("shapes")
        if shapes is None:
            if "passthrough" in node:
                raise self.fail("keys.shapes", "required with keys.passthrough: an unknown key is only shown to "
                                               "the provider whose key shape it has")
            return KeyShape(issued=issued)
        for i, prefix in enumerate(shapes.get("test", [])):
            # Every key of a test shape must be a test request, or a sandbox key could be forwarded live.
            if not prefix.startswith(key_triggers):
                raise self.fail(f"keys.shapes.test.{i}",
                                f"{prefix!r} is not a test trigger: add {{key_prefix: {prefix}}} to test_mode.triggers")
        pattern = None
        if "pattern" in shapes:
            try:
                pattern = re.compile(shapes["pattern"])
            except re.error as exc:
                raise self.fail("keys.shapes.pattern", f"not a regular expression: {exc}") from exc
        return KeyShape(issued=issued, live=tuple(shapes.get("live", ())), test=tuple(shapes.get("test", ())),
                        pattern=pattern)

    def _triggers(self, nodes: list[dict[str, Any]]) -> tuple[tuple[BodyTrigger, ...], tuple[str, ...]]:
        body: list[BodyTrigger] = []
        prefixes: list[str] = []
        for node in nodes:
            if "body" in node:
                body.append(BodyTrigger(
                    name=node["body"],
                    path=tuple(node["body"].split(".")),
                    require_when_parent_present=bool(node.get("require_when_parent_present", False)),
                    message=node.get("message"),
                    field=node.get("field"),
                ))
            else:
                prefixes.append(node["key_prefix"])
        return tuple(body), tuple(prefixes)

    def _flag_names(
        self, triggers: tuple[BodyTrigger, ...], misplaced: dict[str, list[str]]
    ) -> tuple[FlagPaths, frozenset[str], frozenset[str]]:
        """The keys on the triggers' paths (each given once, spelled exactly, or 400), and the header and query
        names refused as misplaced flags: each trigger's key and its ``x-`` form, plus the policy's own."""
        paths = [t.path for t in triggers]
        try:
            flag_paths = compile_flag_paths(paths)
        except ValueError as exc:
            raise self.fail("test_mode.triggers", str(exc)) from exc
        derived = derived_misplaced(paths)
        headers = header_spellings([*derived, *misplaced.get("headers", [])])
        query = frozenset(map(fold, [*derived, *misplaced.get("query", [])]))
        return flag_paths, headers, query

    def _route(
        self, index: int, node: dict[str, Any], definitions: dict[str, Any], dialect: Dialect,
        envelope: tuple[Any] | None,
    ) -> Route:
        where = f"routes.{index}"
        try:
            template = PathTemplate.parse(node["path"])
        except PathTemplateError as exc:
            raise self.fail(f"{where}.path", str(exc)) from exc
        if any(s is not None and not _UNRESERVED.fullmatch(s) for s in template.segments):
            # Requests are matched on their path with only escaped unreserved characters decoded
            # (proxy/target.py): a literal with any other character could never match reliably.
            raise self.fail(f"{where}.path", "literal segments may hold only letters, digits and - . _ ~")
        rules = []
        for j, rule in enumerate(node.get("rules", [])):
            try:
                rules.append(compile_rule(dict(rule)))
            except RuleConfigError as exc:
                raise self.fail(f"{where}.rules.{j}", str(exc)) from exc
        try:
            validator = compile_validator(node.get("schema"), definitions, tuple(rules), dialect.field_style)
        except SchemaCompileError as exc:
            raise self.fail(f"{where}.schema", str(exc)) from exc
        raw = node.get("test_response", [])
        variants = raw if isinstance(raw, list) else [raw]
        responses = tuple(self._variant(f"{where}.test_response.{i}", v, envelope) for i, v in enumerate(variants))
        return Route(
            id=node["id"],
            method=node["method"],
            path=template,
            scope=node["scope"],
            validator=validator,
            responses=responses,
            max_body_bytes=node.get("max_body_bytes"),
        )

    def _variant(self, where: str, node: dict[str, Any], envelope: tuple[Any] | None) -> ResponseVariant:
        """One test response; ``envelope`` is ``(test_mode.envelope,)`` as written, or None without one."""
        if "data" in node and "body" in node:
            raise self.fail(where, "give either 'data' (wrapped in test_mode.envelope) or 'body', not both")
        when = None
        if "when" in node:
            try:
                when = compile_condition(node["when"])
            except TemplateError as exc:
                raise self.fail(f"{where}.when", str(exc)) from exc
        body = None
        if "data" in node:
            if envelope is None:
                raise self.fail(f"{where}.data", "'data' needs test_mode.envelope")
            # One function: the envelope with `data` rendered first and bound, as if env had "data" in it.
            body = self._template(envelope[0], "test_mode.envelope", {"data": (node["data"], f"{where}.data")})
        elif "body" in node:
            body = self._template(node["body"], f"{where}.body")
        elif node["status"] != 204 and not node.get("empty", False):
            raise self.fail(where, "a response other than 204 needs 'data' or 'body' (or 'empty: true')")
        headers = self._template(node["headers"], f"{where}.headers") if "headers" in node else None
        return ResponseVariant(when=when, status=node["status"], headers=headers, body=body)


def _methods(routes: tuple[Route, ...], keys: KeySpec) -> frozenset[str]:
    """The methods a policy allows: its routes', its key check's, and HEAD wherever GET is (RFC 9110 §9.3.2).

    Undeclared paths are forwarded with these methods too; anything else (TRACE, CONNECT, OPTIONS, …) is
    405 before authentication (security review item 9)."""
    methods = {route.method for route in routes}
    if keys.passthrough is not None:
        methods.add(keys.passthrough.method)
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods)


def load_policy(path: Path, upstream_override: str | None = None) -> Policy:
    source = str(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(parse)"
        raise PolicyError(f"{source}: {where}: {getattr(exc, 'problem', None) or exc}") from exc
    except OSError as exc:
        raise PolicyError(f"{source}: (file): {exc.strerror}") from exc
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: (top): a policy must be a mapping")
    return _Compiler(source, doc, upstream_override).compile()


def policy_files(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})


def load_policies(directory: Path, upstreams: Mapping[str, str] | None = None) -> PolicySet:
    """Load every ``*.yaml`` in ``directory`` (or one file); all-or-nothing."""
    files = policy_files(directory)
    if not files:
        raise PolicyError(f"{directory}: (dir): no policy files (*.yaml) found")
    upstreams = upstreams or {}
    policies: list[Policy] = []
    for file in files:
        name_hint = file.stem.lower()
        policy = load_policy(file, upstreams.get(name_hint))
        if name_hint != policy.name and (name_hint in upstreams or policy.name in upstreams):
            # overrides are keyed by policy name: the file's name guessed wrong, load again
            policy = load_policy(file, upstreams.get(policy.name))
        if any(p.name == policy.name for p in policies):
            raise PolicyError(f"{file}: name: policy name {policy.name!r} is used twice")
        policies.append(policy)
    mounts = sorted(
        ((prefix, p) for p in policies for prefix in p.prefixes), key=lambda item: len(item[0]), reverse=True
    )
    _check_shared_prefixes(mounts)
    return PolicySet(tuple(policies), tuple(mounts))


def _check_shared_prefixes(mounts: list[tuple[str, Policy]]) -> None:
    """Policies mounted at one prefix are told apart by their keys' shapes (proxy/policy/mounts.py):
    no key may have the shape of two of them."""
    for i, (prefix, policy) in enumerate(mounts):
        for other_prefix, other in mounts[i + 1:]:
            if other_prefix != prefix or other is policy:
                continue
            for mine in policy.keys.shape.prefixes:
                for theirs in other.keys.shape.prefixes:
                    if mine.startswith(theirs) or theirs.startswith(mine):
                        raise PolicyError(
                            f"{other.source}: keys: key prefix {theirs!r} overlaps {policy.name}'s {mine!r} at the "
                            f"shared mount prefix {prefix!r}: a key could belong to either policy")
