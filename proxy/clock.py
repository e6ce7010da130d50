"""Wall-clock values for responses, cached per second (formatting costs more than reading the clock)."""

from __future__ import annotations

import time

_cache: tuple[int, str] = (0, "")


def utc_iso() -> str:
    """``2024-01-15T10:30:00Z``: the seed's timestamp shape (ISO-8601, UTC, seconds)."""
    global _cache
    now = int(time.time())
    if _cache[0] != now:
        _cache = (now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
    return _cache[1]


_http_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """``Sun, 22 Nov 2026 23:13:16 GMT`` (RFC 9110 §5.6.7) for the Date header of gateway-made responses."""
    global _http_cache
    now = int(time.time())
    if _http_cache[0] != now:
        _http_cache = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode())
    return _http_cache[1]
