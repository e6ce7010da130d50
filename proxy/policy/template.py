"""Response templates: plain YAML data compiled once into render functions.

A template is any JSON-like value. Strings may hold ``{{ expression }}`` placeholders:

* a string that is exactly one placeholder yields the expression's value with its type
  (``"{{ body.variables }}"`` gives the object, ``"{{ body.count }}"`` the number);
* a placeholder inside a longer string is interpolated as text.

An expression is a *path* into the render environment (``body.to.0``, ``path.id``, ``item``, ``now``)
or a *generator call* (``uuid()``, ``token("msg_", 12)``), then optional filters
(``| default("sms")``, ``| first``, ``| exclude("sent")``, ``| upper``, ``| lower``, ``| length``,
``| str``).

Objects with a ``$``-key are directives:

* ``{$each: <expr>, $as: <name>, $template: <t>}``: a list, one rendering per element
  (``index`` holds the position);
* ``{$if: <expr>, $then: <t>, $else: <t>}``: a choice on the expression's truthiness;
* ``{$merge: [<t>, ...]}``: objects merged left to right.

Nothing is parsed on the request path: compile errors surface at policy load with the key path.
Each template becomes one generated Python function (:mod:`proxy.policy.codegen`); fully constant
parts are built once, at load, and shared by every render (responses are only read, by orjson).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from proxy.policy.codegen import MAX_LEVEL, Code, Function
from proxy.policy.expression import (
    MISSING,
    PATH,
    PLACEHOLDER,
    Env,
    Expression,
    Render,
    TemplateError,
    parse_expression,
)

__all__ = [
    "MISSING", "Bindings", "Env", "Render", "TemplateError",
    "compile_condition", "compile_expression", "compile_template", "template_source",
]

Bindings = Mapping[str, tuple[Any, str]]


def compile_template(node: Any, where: str = "template", bindings: Bindings | None = None) -> Render:
    """Compile a YAML value into a render function. ``where`` prefixes error messages (key path).

    ``bindings`` maps a name to a ``(template, where)`` pair rendered first, with the same environment,
    and seen by ``node`` under that name: ``envelope`` with ``data`` bound is ``envelope({**env, "data":
    data(env)})`` in one function, with no copy of the environment.
    """
    return _Compiler(node, where, bindings).build()[0]


def template_source(node: Any, where: str = "template", bindings: Bindings | None = None) -> str:
    """The Python source :func:`compile_template` generates for ``node`` (for tests and debugging)."""
    return _Compiler(node, where, bindings).build()[1]


def compile_expression(source: str) -> Render:
    """Compile ``path | filter(args) | ...`` or ``call(args) | ...``: its value, MISSING when absent."""
    function = Function()
    result, _ = function.expression(parse_expression(source), {})
    return function.build(result.text)[0]


def compile_condition(source: str) -> Callable[[Env], bool]:
    """``expr`` is true when present and non-empty; ``!expr`` inverts it."""
    negate, expr = _condition(source)
    function = Function()
    truthy = function.truthy(function.expression(expr, {})[0])
    render: Callable[[Env], bool] = function.build(f"not {truthy}" if negate else truthy)[0]
    return render


def _condition(source: str) -> tuple[bool, Expression]:
    negate = source.startswith("!")
    return negate, parse_expression(source[1:] if negate else source)


Scope = dict[str, Code]  # names bound by $each ($as, index) and bindings, shadowing the environment


class _Compiler:
    """Walks a template once, emitting its render function; errors carry the key path."""

    def __init__(self, node: Any, where: str, bindings: Bindings | None) -> None:
        self.function = Function()
        scope: Scope = {}
        for name, (value, value_where) in (bindings or {}).items():
            code = self.node(value, value_where, {})
            scope[name] = code if code.constant else self.function.local(code)
        self.result = self.node(node, where, scope)

    def build(self) -> tuple[Render, str]:
        return self.function.build(self.result.text)

    def node(self, node: Any, where: str, scope: Scope) -> Code:
        if self.function.level >= MAX_LEVEL and isinstance(node, dict | list):
            return self.apart(node, where, scope)
        if isinstance(node, str):
            try:
                return self.function.hoist(self.string(node, scope))
            except TemplateError as exc:
                raise TemplateError(f"{where}: {exc}") from exc
        if isinstance(node, list):
            items = [self.node(item, f"{where}.{i}", scope) for i, item in enumerate(node)]
            if all(item.constant for item in items):
                return self.function.const([item.value for item in items])
            return self.function.nest("[" + ", ".join(item.text for item in items) + "]", items)
        if isinstance(node, dict):
            if any(isinstance(key, str) and key.startswith("$") for key in node):
                return self.directive(node, where, scope)
            fields = [(str(key), self.node(value, f"{where}.{key}", scope)) for key, value in node.items()]
            if all(value.constant for _, value in fields):
                return self.function.const({key: value.value for key, value in fields})
            source = "{" + ", ".join(f"{key!r}: {value.text}" for key, value in fields) + "}"
            return self.function.nest(source, [value for _, value in fields])
        if node is None or isinstance(node, bool | int | float):
            return self.function.const(node)
        raise TemplateError(f"{where}: unsupported value of type {type(node).__name__}")

    def apart(self, node: Any, where: str, scope: Scope) -> Code:
        """``node`` as a function of its own, given the names in scope in its environment (deep nesting)."""
        render = _Compiler(node, where, None).build()[0]
        names = "".join(f", {name!r}: {code.text}" for name, code in scope.items())
        return self.function.here(f"{self.function.const(render).text}({{**env{names}}})")

    def string(self, template: str, scope: Scope) -> Code:
        function = self.function
        matches = list(PLACEHOLDER.finditer(template))
        if not matches:
            return function.const(template)
        if len(matches) == 1 and matches[0].span() == (0, len(template)):
            inner = matches[0].group(1).strip()
            if PATH.match(inner):  # the common case: the value, None when absent
                root, *rest = inner.split(".")
                if root in scope:
                    return function.path(scope[root], tuple(rest), missing=False)
                if not rest:
                    return function.root(root, missing=False)
                return function.path(function.root(root), tuple(rest), missing=False)
            code, maybe = function.expression(parse_expression(inner), scope)
            if not maybe:
                return code
            value = function.local(code)
            return Code(f"(None if {value.text} is _M else {value.text})", value.level, value.pure, depth=1)
        pieces: list[str] = []
        last = 0
        for match in matches:
            if match.start() > last:
                pieces.append(function.const(template[last : match.start()]).text)
            pieces.append(function.text(function.expression(parse_expression(match.group(1)), scope)[0]).text)
            last = match.end()
        if last < len(template):
            pieces.append(function.const(template[last:]).text)
        return function.here("(" + " + ".join(pieces) + ")")

    def directive(self, node: dict[str, Any], where: str, scope: Scope) -> Code:
        function = self.function
        keys = set(node)
        if "$each" in keys:
            _expect(keys, {"$each", "$template"}, {"$as"}, where)
            source = _expr(node["$each"], f"{where}.$each")
            name = str(node.get("$as", "item"))
            values = function.local(function.expression(source, scope)[0]).text
            out, index, item = function.fresh(), function.fresh(), function.fresh()
            with function.block() as lines:
                inner = {**scope, name: Code(item, function.level), "index": Code(index, function.level)}
                body = self.node(node["$template"], f"{where}.$template", inner)
                function.line(f"{out}.append({body.text})")
            targets = f"{index}, {item} in enumerate(" if _uses(index, [*lines, body.text]) else f"{item} in ("
            function.line(f"{out} = []")
            function.line(f"for {targets}{values} if type({values}) is list else _seq({values})):")
            function.extend(lines)
            return function.here(out, depth=0)
        if "$if" in keys:
            _expect(keys, {"$if", "$then"}, {"$else"}, where)
            text = _expr_text(node["$if"], f"{where}.$if")
            try:
                negate, expr = _condition(text)
            except TemplateError as exc:
                raise TemplateError(f"{where}.$if: {exc}") from exc
            truthy = function.truthy(function.expression(expr, scope)[0])
            condition = f"not {truthy}" if negate else truthy
            with function.block() as then_lines:
                then = self.node(node["$then"], f"{where}.$then", scope)
            with function.block() as else_lines:
                other = self.node(node.get("$else"), f"{where}.$else", scope)
            if not then_lines and not else_lines:
                return function.nest(f"({then.text} if {condition} else {other.text})", [then, other])
            out = function.fresh()
            function.line(f"if {condition}:")
            function.extend(then_lines)
            function.line(f"    {out} = {then.text}")
            function.line("else:")
            function.extend(else_lines)
            function.line(f"    {out} = {other.text}")
            return function.here(out, depth=0)
        if "$merge" in keys:
            _expect(keys, {"$merge"}, set(), where)
            parts = node["$merge"]
            if not isinstance(parts, list):
                raise TemplateError(f"{where}.$merge: expected a list of objects")
            codes = [self.node(part, f"{where}.$merge.{i}", scope) for i, part in enumerate(parts)]
            if all(code.constant for code in codes):
                merged: dict[str, Any] = {}
                for code in codes:
                    if isinstance(code.value, dict):
                        merged.update(code.value)
                return function.const(merged)
            out = function.fresh()
            function.line(f"{out} = {{}}")
            for code in codes:
                if code.constant:
                    if isinstance(code.value, dict) and code.value:
                        function.line(f"{out}.update({code.text})")
                    continue
                value = function.local(code).text
                function.line(f"if isinstance({value}, dict):")
                function.line(f"    {out}.update({value})")
            return function.here(out, depth=0)
        raise TemplateError(f"{where}: unknown directive(s) {sorted(keys)} (known: $each, $if, $merge)")


def _uses(name: str, sources: list[str]) -> bool:
    """Whether generated ``sources`` read the generated local ``name``."""
    word = re.compile(rf"\b{name}\b")
    return any(word.search(source) for source in sources)


def _expect(keys: set[str], required: set[str], optional: set[str], where: str) -> None:
    if missing := required - keys:
        raise TemplateError(f"{where}: missing {sorted(missing)}")
    if extra := keys - required - optional:
        raise TemplateError(f"{where}: unexpected {sorted(extra)}")


def _expr(value: Any, where: str) -> Expression:
    try:
        return parse_expression(_expr_text(value, where))
    except TemplateError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


def _expr_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{where}: expected an expression string")
    match = PLACEHOLDER.fullmatch(value.strip())
    return match.group(1) if match else value.strip()
