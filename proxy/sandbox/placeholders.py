"""WhatsApp template bodies: ``{{n}}`` placeholders, Meta's rules for them, and filling them in.

Blueticked (TP ✅): placeholders are numbered ``{{1}}``, ``{{2}}``, …; every variable is used in order;
no two variables are adjacent; no variable at the very start or end of the body. At send time the
values come in ``template_variables``, keyed by the number as a string (``{"1": "Sam"}``).

Which rule refuses a template at creation and which rejects it at review is policy data
(``sandbox.templates.rules``); this module only finds the breaches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

# Anything in double braces, and lone braces pairs left over: both are checked by `syntax`.
_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NUMBER = re.compile(r"[1-9][0-9]{0,2}")


@dataclass(frozen=True, slots=True)
class Placeholders:
    """The numbers a body uses (in order of appearance, repeats kept) and where each one is."""

    numbers: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]

    @property
    def names(self) -> frozenset[str]:
        """The ``template_variables`` keys the body needs: ``{"1", "2"}``."""
        return frozenset(str(n) for n in self.numbers)


@lru_cache(maxsize=1024)  # a workspace sends with the same few template bodies over and over
def parse(body: str) -> tuple[Placeholders, bool]:
    """The body's placeholders, and whether their syntax is sound (every ``{{…}}`` holds a number from 1,
    with nothing else around it, and no ``{{`` or ``}}`` is left unpaired)."""
    numbers: list[int] = []
    spans: list[tuple[int, int]] = []
    sound = True
    last = 0
    for match in _BRACES.finditer(body):
        if "{{" in body[last:match.start()] or "}}" in body[last:match.start()]:
            sound = False
        inner = match.group(1)
        if _NUMBER.fullmatch(inner):
            numbers.append(int(inner))
            spans.append(match.span())
        else:
            sound = False
        last = match.end()
    if "{{" in body[last:] or "}}" in body[last:]:
        sound = False
    return Placeholders(tuple(numbers), tuple(spans)), sound


def breaches(body: str) -> list[str]:
    """The rules ``body`` breaks, in the order Meta's review states them: ``syntax``, ``sequential``,
    ``adjacent``, ``edges``."""
    found, sound = parse(body)
    broken = [] if sound else ["syntax"]
    first_uses: list[int] = []
    for number in found.numbers:
        if number not in first_uses:
            first_uses.append(number)
    if first_uses != list(range(1, len(first_uses) + 1)):
        broken.append("sequential")
    if any(not body[end:start].strip() for (_, end), (start, _) in zip(found.spans, found.spans[1:], strict=False)):
        broken.append("adjacent")
    stripped = body.strip()
    if found.spans and (stripped.startswith("{{") or stripped.endswith("}}")):
        broken.append("edges")
    return broken


def variable_gaps(body: str, variables: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(missing, unknown): numbers the body uses that ``variables`` lacks, and keys it has that the body
    does not use; each sorted by number."""
    needed = parse(body)[0].names
    given = set(variables)
    return sorted(needed - given, key=_order), sorted(given - needed, key=_order)


def render(body: str, variables: Mapping[str, str]) -> str:
    """The body with each ``{{n}}`` replaced by ``variables[str(n)]`` (a missing one is left as it is;
    anything else in braces stays as written)."""
    found = parse(body)[0]
    pieces: list[str] = []
    last = 0
    for number, (start, end) in zip(found.numbers, found.spans, strict=True):
        pieces.append(body[last:start])
        pieces.append(variables.get(str(number), body[start:end]))
        last = end
    pieces.append(body[last:])
    return "".join(pieces)


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)
