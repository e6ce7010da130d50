"""Which spellings of a test flag's name a provider or a framework may read as the flag: one folding rule,
compiled once per policy (policies/README.md, ``test_mode``).

- **JSON keys.** Go's ``encoding/json`` matches keys to struct fields case-insensitively, with Unicode
  simple folding, so the long s (U+017F) reads as ``s`` and the Kelvin sign (U+212A) as ``k``; ASP.NET's
  ``System.Text.Json`` web defaults (``PropertyNameCaseInsensitive``) compare upper-invariant, so the
  dotless i (U+0131) reads as ``i``. ``-`` is folded to ``_`` too: ``test-mode`` is what a user types for ``test_mode``.
- **Header and query names**, where a provider never reads the flag: users and frameworks write ``_`` and
  ``-`` interchangeably and in any case, and PHP, Rails and qs read ``sandbox[]=true`` as ``sandbox`` and
  ``a[b][c]`` (or ``a.b.c``) as nested names.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Iterable

from proxy.policy.model import FlagKey, FlagPaths

# A body's bytes, folded as ``fold`` folds ASCII: letters lower-cased, ``-`` as ``_``. One byte to one,
# so an offset in the folded copy is the same offset in the body.
FOLD_BYTES = bytes.maketrans(string.ascii_uppercase.encode() + b"-", string.ascii_lowercase.encode() + b"_")
# Every non-ASCII character that folds to an ASCII letter, by that letter (tests/policy/test_flagnames.py
# checks the list against every code point).
LOOK_ALIKES = {"i": "\u0131", "k": "\u212a", "s": "\u017f"}
_NESTING = re.compile(r"[\[\].]")


def fold(name: str) -> str:
    """The spelling every variant of ``name`` shares: case folded one character to one, ``-`` as ``_``."""
    folded = name.upper().lower()
    if len(folded) != len(name):  # a character that expands (ß → SS) is read as no single letter
        folded = "".join(c if len(f := c.upper().lower()) != 1 else f for c in name)
    return folded.replace("-", "_")


def compile_flag_paths(paths: Iterable[tuple[str, ...]]) -> FlagPaths:
    """The tree of every key on the triggers' paths. Raises ``ValueError`` when two keys of one object fold
    to the same name (``test_mode`` and ``Test-Mode``): no body could give one without the other's spelling."""
    paths = list(paths)

    def level(prefix: tuple[str, ...]) -> tuple[FlagKey, ...]:
        depth = len(prefix)
        names = list(dict.fromkeys(p[depth] for p in paths if len(p) > depth and p[:depth] == prefix))
        folded = [fold(n) for n in names]
        if clash := [n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1]:
            raise ValueError(f"trigger keys {', '.join(map(repr, clash))} differ only in case or '-'/'_'")
        return tuple(FlagKey(n, f, f'"{n}"'.encode(), f'"{f}"'.encode(), level((*prefix, n)))
                     for n, f in zip(names, folded, strict=True))

    keys = level(())
    every = {fold(part) for path in paths for part in path}
    letters = set("".join(every))
    return FlagPaths(
        keys=keys,
        folded=frozenset(every),
        lengths=frozenset(map(len, every)),
        look_alikes=tuple(LOOK_ALIKES[c].encode() for c in sorted(letters & LOOK_ALIKES.keys())),
    )


def derived_misplaced(paths: Iterable[tuple[str, ...]]) -> list[str]:
    """The header and query names refused by default: each body trigger's key, and its ``x-`` form."""
    return [form for path in paths for form in (path[-1], f"x-{path[-1]}")]


def header_spellings(names: Iterable[str]) -> frozenset[str]:
    """Every lower-case spelling of ``names`` (any case, ``-`` or ``_`` at each separator): header names
    arrive lower-cased, so one set lookup per header matches them as ``fold`` would."""
    spellings: set[str] = set()
    for name in map(fold, names):
        parts = name.split("_")
        for seps in itertools.product("-_", repeat=len(parts) - 1):
            spellings.add(parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True)))
    return frozenset(spellings)


def query_name_is_misplaced(name: str, folded_names: frozenset[str]) -> bool:
    """``name`` or one of its nested parts (``sandbox[]``, ``a[sandbox]``, ``a.sandbox``) folds to a misplaced name."""
    if fold(name) in folded_names:
        return True
    return any(fold(part) in folded_names for part in _NESTING.split(name) if part)
