"""Path templates (``/v3/contacts/{id}``) compiled into a per-method, per-length segment table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class PathTemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PathTemplate:
    text: str
    segments: tuple[str | None, ...]  # None marks a parameter
    names: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        if not text.startswith("/"):
            raise PathTemplateError(f"path {text!r} must start with '/'")
        segments: list[str | None] = []
        names: list[str] = []
        for part in text.strip("/").split("/"):
            if match := _PARAM.match(part):
                if match.group(1) in names:
                    raise PathTemplateError(f"parameter {{{match.group(1)}}} appears twice in {text!r}")
                names.append(match.group(1))
                segments.append(None)
            elif "{" in part or "}" in part or not part:
                raise PathTemplateError(f"bad segment {part!r} in {text!r}")
            else:
                segments.append(part)
        return cls(text, tuple(segments), tuple(names))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        names = iter(self.names)
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                params[next(names)] = got
            elif want != got:
                return None
        return params


class PathTable(Generic[T]):
    """Lookup by (method, path); literal segments win over parameters (most literal first)."""

    def __init__(self, entries: Iterable[tuple[str, PathTemplate, T]]) -> None:
        self._exact: dict[tuple[str, str], T] = {}
        self._templated: dict[tuple[str, int], list[tuple[PathTemplate, T]]] = {}
        for method, template, value in entries:
            if not template.names:
                key = (method, "/" + "/".join(s for s in template.segments if s))
                if key in self._exact:
                    raise PathTemplateError(f"{method} {template.text} is declared twice")
                self._exact[key] = value
            else:
                bucket = self._templated.setdefault((method, len(template.segments)), [])
                if any(t.segments == template.segments for t, _ in bucket):
                    raise PathTemplateError(f"{method} {template.text} is declared twice")
                bucket.append((template, value))
                bucket.sort(key=lambda item: [s is None for s in item[0].segments])

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        normal = path.rstrip("/") or "/"
        if (hit := self._exact.get((method, normal))) is not None:
            return hit, {}
        parts = normal.strip("/").split("/")
        for template, value in self._templated.get((method, len(parts)), ()):
            params = template.match(parts)
            if params is not None:
                return value, params
        return None
