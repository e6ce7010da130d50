"""Raw request targets for the "only the policy's origin" property (security review item 1).

A target is a few pieces joined: path words, separators, the escapes and characters that have
smuggled an authority, a dot segment or a NUL past a proxy before (``%2f``, ``%5c``, ``@``, ``\\``,
``//``, ``..``, ``..;``, ``%00``), escapes that are fine (``%20``, ``%40``, UTF-8), unicode look-alikes of
``/`` and a host:port of the caller's choosing (the attacker listener's). Used by hypothesis for the
bulk (tests/test_target.py) and by a seeded ``random.Random`` for the sample sent to the real server.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

STARTS = (b"/", b"/sent", b"/sent/", b"/se%6et", b"/sendgrid", b"//", b"*", b"", b"http://{a}", b"https://u:p@{a}",
          b"/%2f", b"\\", b"/v3")
PIECES = (
    b"/", b"//", b"\\", b"?", b"#", b"*", b";", b":", b"@", b".", b"..", b"..;", b"~", b"!", b"$", b"&", b"'(", b"+",
    b"=", b",",
    b"%2f", b"%2F", b"%5c", b"%5C", b"%2e", b"%2E", b"%2e%2e", b"%40", b"%3a", b"%3A", b"%00", b"%0a", b"%7f",
    b"%25", b"%252f", b"%", b"%z", b"%zz", b"%c3%a9", b"%20", b"%3f", b"%23", b"%6e", b"%7E", b"%ff",
    b"sent", b"sendgrid", b"v3", b"me", b"messages", b"contacts", b"templates", b"x",
    b"{a}", b"127.0.0.1", b"evil.example", b"http:", b"https://", b"@{a}", b":{a}",
    b"%E2%88%95", b"%EF%BC%8F", b"%E2%80%A4%E2%80%A4",  # escaped look-alikes of '/' and '..' (U+2215, U+FF0F, U+2024)
    "\uff0f".encode(), b"\xff",  # raw non-ASCII: the HTTP parser refuses these before the gateway sees them
)


def _fill(pieces: list[bytes], where: str) -> bytes:
    return b"".join(pieces).replace(b"{a}", where.encode())


def targets(where: str) -> st.SearchStrategy[bytes]:
    """Hypothesis strategy: a start and up to 12 pieces, ``{a}`` replaced by ``where`` (host:port)."""
    return st.builds(lambda start, rest: _fill([start, *rest], where),
                     st.sampled_from(STARTS), st.lists(st.sampled_from(PIECES), max_size=12))


def random_target(rng: random.Random, where: str) -> bytes:
    """The same space of targets, drawn with ``rng`` (for a fixed sample sent over the wire)."""
    return _fill([rng.choice(STARTS), *(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))], where)
