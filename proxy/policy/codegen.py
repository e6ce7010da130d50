"""Python source for one compiled template: a single generated function (fastjsonschema's approach).

A tree of small closures costs one Python call per node and, under load, instruction-cache misses; one
function per template renders the Sent send envelope in a fraction of the time.

Policy text never becomes source. Every constant is a value in the function's private namespace under a
generated name, or the ``repr()`` of a str, int, float, bool or None; every identifier is generated here.
Environment roots (``body``, ``now``) are read once per render into locals. Lookups and filters are
pure, so each is computed once per render, in the outermost block where its inputs exist (a lookup of
``body`` inside ``$each`` runs once, before the loop); generator calls and new objects stay in place.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from proxy.policy.expression import (
    KEEPS_MISSING,
    MISSING,
    NEVER_MISSING,
    Expression,
    Render,
    each_values,
    f_default,
    f_exclude,
    f_first,
    lookup,
    path_value,
    text,
)

# Names the generated code uses for runtime helpers; generated locals are _v<n>, constants _c<n>.
_RUNTIME: dict[str, Any] = {
    "_M": MISSING,
    "_E": ("", [], {}),  # what truthiness calls empty, besides MISSING, None and False
    "_lk": lookup,
    "_pv": path_value,
    "_tx": text,
    "_seq": each_values,
    "_first": f_first,
}
_MAX_DEPTH = 32  # nested brackets before an expression goes in a local: the parser allows 200
MAX_LEVEL = 12  # nested blocks before a template gets its own function: Python allows 20 (CO_MAXBLOCKS)


@dataclass(frozen=True, slots=True)
class Code:
    """A Python expression and what it may be moved or shared by.

    ``level``: the outermost block whose locals it reads. ``pure``: the same value however often and
    wherever (in or above ``level``) it is evaluated: lookups and filters are; calls of generators and
    displays (a new object each time) are not. ``constant``: ``value`` itself, built at compile time.
    """

    text: str
    level: int = 0
    pure: bool = True
    constant: bool = False
    value: Any = None
    depth: int = 0  # nested brackets, kept under the parser's limit


def literal(value: Any) -> str | None:
    """Source for a scalar that ``repr()`` writes as a literal exactly, else None."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return repr(value)
    if kind is int and -(2**63) <= value < 2**63:
        return repr(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    return None


class Function:
    """Builds ``def _render(env): ...``: root reads first, then statements in nested blocks, then ``return``."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = dict(_RUNTIME)
        self._prologue: list[str] = []
        self._blocks: list[list[str]] = [[]]  # the open blocks, outermost first: level = index
        self._shared: list[dict[str, str]] = [{}]  # per open block: pure source -> the local holding it
        self._roots: dict[tuple[str, bool], str] = {}
        self._constants: dict[int, str] = {}
        self._count = 0

    @property
    def level(self) -> int:
        return len(self._blocks) - 1

    def fresh(self) -> str:
        self._count += 1
        return f"_v{self._count}"

    def line(self, statement: str, level: int | None = None) -> None:
        level = self.level if level is None else level
        self._blocks[level].append("    " * (level + 1) + statement)

    def extend(self, lines: list[str]) -> None:
        """Place the lines of a closed :meth:`block` in the current one."""
        self._blocks[-1].extend(lines)

    @contextmanager
    def block(self) -> Iterator[list[str]]:
        """Collect the statements emitted inside, one level deeper, for the caller to place."""
        self._blocks.append([])
        self._shared.append({})
        try:
            yield self._blocks[-1]
        finally:
            self._blocks.pop()
            self._shared.pop()

    def here(self, source: str, depth: int = 1, pure: bool = False) -> Code:
        """An expression that stays where it is used."""
        return Code(source, level=self.level, pure=pure, depth=depth)

    def const(self, value: Any) -> Code:
        source = literal(value)
        if source is None:
            name = self._constants.get(id(value))
            if name is None:
                name = self._constants[id(value)] = f"_c{len(self._constants)}"
                self.namespace[name] = value
            source = name
        return Code(source, constant=True, value=value)

    def local(self, code: Code) -> Code:
        """``code`` as a name, to use it twice without computing it twice; pure ones are computed once."""
        if code.text.isidentifier() and not keyword.iskeyword(code.text):  # None[0] would warn at compile
            return code
        if not code.pure:
            name = self.fresh()
            self.line(f"{name} = {code.text}")
            return Code(name, level=self.level)  # the name itself reads the same every time
        shared = self._shared[code.level]
        known = shared.get(code.text)
        if known is None:
            known = shared[code.text] = self.fresh()
            self.line(f"{known} = {code.text}", code.level)
        return Code(known, level=code.level)

    def hoist(self, code: Code) -> Code:
        """A pure ``code`` that does not depend on the current block, computed once above it."""
        if code.pure and code.level < self.level and not code.constant and not code.text.isidentifier():
            return self.local(code)
        return code

    def nest(self, source: str, parts: list[Code]) -> Code:
        """An expression around ``parts``, in a local when it would nest too deep for the parser."""
        depth = 1 + max(part.depth for part in parts)
        if depth <= _MAX_DEPTH:
            return self.here(source, depth)
        return self.local(self.here(source))

    def root(self, name: str, missing: bool = True) -> Code:
        """``env[name]``, read once per render; absent is MISSING, or None when ``missing`` is false."""
        key = (name, missing)
        if key not in self._roots:
            self._roots[key] = local = self.fresh()
            default = ", _M" if missing else ""
            self._prologue.append(f"    {local} = env.get({name!r}{default})")
        return Code(self._roots[key])

    def path(self, base: Code, parts: tuple[str, ...], missing: bool) -> Code:
        """``base.parts``, absent as MISSING or (``missing`` false) None; dicts inline, the rest by helper."""
        value = base
        for part in parts:
            key = repr(part)
            v = self.local(value).text
            if missing:
                source = f"{v}.get({key}, _M) if type({v}) is dict else _lk({v}, ({key},))"
            else:
                source = f"{v}.get({key}) if type({v}) is dict else _pv({v}, ({key},))"
            value = self.local(Code(source, level=value.level, pure=value.pure))
        return value

    def expression(self, expr: Expression, scope: dict[str, Code]) -> tuple[Code, bool]:
        """``expr`` (MISSING when absent) and whether it may be MISSING."""
        code: Code
        if expr.call is not None:
            call_args = ", ".join(self.const(arg).text for arg in expr.args)
            code, maybe = self.here(f"{self.const(expr.call).text}({call_args})"), False
        else:
            base = scope[expr.root] if expr.root in scope else self.root(expr.root)
            code, maybe = self.path(base, expr.parts, missing=True), True
        for flt, args in expr.filters:
            if flt in (f_default, f_first, f_exclude):
                value = self.local(code)
                v = value.text
                if flt is f_default:
                    fallback = self.const(args[0] if args else None).text
                    source = f"({fallback} if {v} is _M or {v} is None else {v})"
                elif flt is f_first:
                    source = f"(({v}[0] if {v} else _M) if type({v}) is list else _first({v}))"
                else:
                    source = f"(_M if {v} in {self.const(args).text} else {v})"
                code = Code(source, level=value.level, pure=value.pure, depth=2)
            else:  # called where used: a filter may raise (str of a huge int), so it is never moved
                extra = "".join(f", {self.const(arg).text}" for arg in args)
                code = self.here(f"{self.const(flt).text}({self.local(code).text}{extra})")
            maybe = False if flt in NEVER_MISSING else maybe if flt in KEEPS_MISSING else True
        return code, maybe

    def text(self, code: Code) -> Code:
        value = self.local(code).text
        return self.here(f"({value} if type({value}) is str else _tx({value}))")

    def truthy(self, code: Code) -> str:
        v = self.local(code).text
        return f"({v} is not _M and {v} is not None and {v} is not False and {v} not in _E)"

    def build(self, result: str) -> tuple[Render, str]:
        """The compiled function and its source."""
        assert self.level == 0
        source = "\n".join(["def _render(env):", *self._prologue, *self._blocks[0], f"    return {result}", ""])
        namespace = dict(self.namespace)
        exec(compile(source, "<template>", "exec"), namespace)  # the source holds no policy text
        return cast(Render, namespace["_render"]), source
