"""The one clock: wall-clock time for everything scheduled or stamped.

Lifecycles, retries, retention, the templates' ``now``, gateway-made ``Date`` headers and the
sandbox's workspace clocks all read a :class:`Clock` handed to them by the composition root
(:mod:`proxy.app`), so tests move a :class:`ManualClock` instead of sleeping. Latencies stay on
``time.perf_counter`` and outside it: they measure real elapsed time, whatever the clock says.

Formatting costs more than reading the clock, so the two formatted forms are cached per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


def iso_ms(ts: float) -> str:
    """``2026-05-22T10:30:00.000Z``: ISO 8601 UTC with milliseconds (Blueticked's timestamps)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def iso_s(ts: float) -> str:
    """``2024-01-15T10:30:00Z``: ISO 8601 UTC to the second (Sent's timestamps)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Clock:
    """The system clock. Subclasses change ``time()``; everything else derives from it."""

    __slots__ = ("_http", "_iso")

    def __init__(self) -> None:
        self._iso: tuple[int, str] = (0, "")
        self._http: tuple[int, bytes] = (0, b"")

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def utc_iso(self) -> str:
        """``2024-01-15T10:30:00Z``: the seed's timestamp shape (ISO-8601, UTC, seconds)."""
        now = int(self.time())
        if self._iso[0] != now:
            self._iso = (now, iso_s(now))
        return self._iso[1]

    def http_date(self) -> bytes:
        """``Sun, 22 Nov 2026 23:13:16 GMT`` (RFC 9110 §5.6.7), for gateway-made responses."""
        now = int(self.time())
        if self._http[0] != now:
            self._http = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode())
        return self._http[1]

    def on_jump(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the clock jumps (never, for the system clock): a scheduler
        sleeping until a due time must wake and look again."""


class ManualClock(Clock):
    """A clock that moves only when told to: for tests, and for deterministic sandbox runs."""

    __slots__ = ("_listeners", "_now")

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        super().__init__()
        self._now = start
        self._listeners: list[Callable[[], None]] = []

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        for listener in list(self._listeners):
            listener()

    def on_jump(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)


SYSTEM_CLOCK = Clock()
