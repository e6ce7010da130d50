"""The secret canary (issue 15): no key, provider credential, webhook secret, phone number or email address
appears raw in any gateway log line, metric label or error body, over the whole test suite.

How it works, for every gateway a test starts through :class:`tests.support.servers.Gateway`:

* the suite's secrets carry :data:`MARKER` (``tests/conftest.py``: issued keys, pass-through keys, the
  provider credential, :data:`WEBHOOK_SECRET`; use :func:`marked` for new ones);
* each gateway writes its stdout and stderr to a file (its ``log_file``, or one in this session's log
  directory), and its ``/metrics`` page is saved when it is stopped;
* every error response (status >= 400) a test reads from a gateway through httpx (the official Sent client
  included) is checked as it is read;
* when the session ends, :func:`scan` reads every log and metrics page; any finding is listed under
  "secret canary" and fails the run (``tests/conftest.py``: ``pytest_sessionfinish``).

What counts as a leak (:data:`PATTERNS`): the marker anywhere; anything shaped like a Sent key
(``sk_live_…``/``sk_test_…``), a SendGrid key (``SG.x.y``) or a webhook secret (``whsec_…``), marked or
not; an E.164 phone number (``+15555550100``; masked ``+1******0100`` is fine); an email address whose
local part is not masked (``a***@example.com`` is fine). Raw-socket exchanges, the SendGrid client (urllib)
and the Node client are not read by the error-body check; their gateways' logs are still scanned.
"""

from __future__ import annotations

import re
import secrets
import string
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MARKER = "CANARY"
WEBHOOK_SECRET = f"whsec_{MARKER * 6}"  # valid base64 of 27 bytes (Standard Webhooks wants >= 24)
PHONE = "+15555550142"
EMAIL = f"{MARKER.lower()}.recipient@example.com"

PATTERNS: dict[str, re.Pattern[str]] = {
    "canary marker": re.compile(MARKER),
    "Sent key": re.compile(r"\bsk_(?:live|test)_[A-Za-z0-9_]{8,}"),
    "SendGrid key": re.compile(r"\bSG\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"),
    "phone number": re.compile(r"\+[1-9]\d{7,14}\b"),
    "email address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
}


# Examples the policies' own error messages give ("... in E.164 format (e.g. +15555555555)", SendGrid's
# "example@example.com"): the gateway's wording, not anyone's data. Never use them as test data.
DOCUMENTED_EXAMPLES = frozenset({"+15555555555", "example@example.com"})


def marked(prefix: str, length: int = 24) -> str:
    """A new secret with the canary marker: ``prefix`` + ``CANARY`` + random letters and digits."""
    return prefix + MARKER + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


@dataclass(frozen=True)
class Finding:
    source: str
    line: int
    kind: str
    value: str

    def __str__(self) -> str:  # masked: the report must not repeat the secret whole
        return f"{self.source}:{self.line}: {self.kind} {self.value[:6]}…({len(self.value)} chars)"


def findings(text: str, source: str) -> list[Finding]:
    """Every leak in ``text``."""
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if match.group(0) not in DOCUMENTED_EXAMPLES:
                found.append(Finding(source, text.count("\n", 0, match.start()) + 1, kind, match.group(0)))
    return found


@dataclass
class Session:
    """The gateways of this test session: their logs, saved metrics pages, and error bodies already read."""

    directory: Path | None = None
    logs: list[Path] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    body_findings: list[Finding] = field(default_factory=list)
    bodies_checked: int = 0
    files_scanned: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log_for(self, port: int) -> Path:
        """Where a gateway that was given no log file writes."""
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="testmode-gateway-logs-"))
        return self.directory / f"gateway-{port}.log"

    def started(self, port: int, log: Path) -> None:
        with self._lock:
            self.ports.add(port)
            self.logs.append(log)

    @staticmethod
    def metrics_file(log: Path) -> Path:
        return log.with_name(log.name + ".metrics")

    def check_response(self, response: httpx.Response) -> None:
        """An error body a test has just read, if a gateway of this session sent it."""
        if response.status_code < 400 or getattr(response, "_canary_read", False):
            return
        response._canary_read = True  # type: ignore[attr-defined]  # read() may be called again
        try:
            request = response.request
        except RuntimeError:  # a response built by hand
            return
        if request.url.port not in self.ports:
            return
        source = f"error body of {request.method} {request.url.path} ({response.status_code})"
        found = findings(response.content.decode("utf-8", "replace"), source)
        with self._lock:
            self.bodies_checked += 1
            self.body_findings.extend(found)

    def scan(self) -> list[Finding]:
        """Every finding of the session so far: error bodies, then each log and metrics page."""
        found = list(self.body_findings)
        for log in dict.fromkeys(self.logs):
            for path in (log, self.metrics_file(log)):
                if path.exists():
                    self.files_scanned += 1
                    found += findings(path.read_text(errors="replace"), str(path))
        return found


SESSION = Session()


def reading_checked(read: Callable[..., Any]) -> Callable[..., Any]:
    """``httpx.Response.read`` that also hands the body to :meth:`Session.check_response`."""

    def checked_read(self: httpx.Response) -> bytes:
        content: bytes = read(self)
        SESSION.check_response(self)
        return content

    return checked_read


def areading_checked(aread: Callable[..., Any]) -> Callable[..., Any]:
    async def checked_aread(self: httpx.Response) -> bytes:
        content: bytes = await aread(self)
        SESSION.check_response(self)
        return content

    return checked_aread


def report(found: list[Finding], limit: int = 50) -> Iterator[str]:
    yield from map(str, found[:limit])
    if len(found) > limit:
        yield f"… and {len(found) - limit} more"
