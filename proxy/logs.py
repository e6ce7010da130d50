"""structlog, configured once: contextvars → level → timestamp → orjson, written as bytes to stdout.

One canonical line per request (rendered by :class:`CanonicalLog`, the same JSON shape as a
structlog line, and written in batches by :mod:`proxy.ledger`); stage events at debug level.
Keys, secrets and message bodies are never logged; phone numbers and emails are masked by the
callers that log request-derived text (:mod:`proxy.masking`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, BinaryIO

import orjson
import structlog

# The request id, bound for every log event made while a request is handled (one ContextVar set
# per request is far cheaper than structlog's bind_contextvars/clear_contextvars pair).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


# True when debug events are on; stages test it before building a debug event (a disabled
# structlog call still costs three Python calls through the lazy logger proxy).
DEBUG = False

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class CanonicalLog:
    """The per-request line: orjson, same keys as a structlog line, written a batch at a time.

    structlog's processor chain plus a write(2) per line cost ~14 µs a request here (stdout is
    unbuffered under PYTHONUNBUFFERED). The :class:`proxy.ledger.Ledger` renders a batch of lines
    with :meth:`line` and writes them with one :meth:`write`.
    """

    def __init__(self, stream: BinaryIO, *, enabled: bool = True) -> None:
        self.stream, self.enabled = stream, enabled
        self._second: tuple[int, str] = (0, "")

    def _timestamp(self, at: float) -> str:
        micros = int(at * 1_000_000)
        whole = micros // 1_000_000
        if self._second[0] != whole:
            self._second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
        return "%s.%06dZ" % (self._second[1], micros % 1_000_000)  # noqa: UP031 (faster than an f-string spec)

    def line(self, fields: dict[str, Any], at: float) -> bytes:
        """One JSON line for ``fields``; ``at`` (UNIX time) is when the request ended."""
        fields["event"], fields["level"], fields["timestamp"] = "request", "info", self._timestamp(at)
        return orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)

    def write(self, lines: bytes | bytearray) -> None:
        if lines:
            self.stream.write(lines)
            self.stream.flush()


def canonical_log(level: str = "info") -> CanonicalLog:
    """The canonical log on stdout, on unless the level is above info."""
    return CanonicalLog(sys.stdout.buffer, enabled=_LEVELS.get(level.lower(), logging.INFO) <= logging.INFO)


def server_log_config(level: str = "info") -> dict[str, Any]:
    """``logging.config`` for uvicorn's own loggers: the same JSON lines on stdout as the gateway's.

    The access log stays off: the canonical line replaces it (and it would print query strings)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processor": structlog.processors.JSONRenderer(),
                "foreign_pre_chain": [
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                ],
            },
        },
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure_logging(level: str = "info") -> None:
    global DEBUG
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    DEBUG = numeric <= logging.DEBUG
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
    )
    # httpx logs full URLs at INFO and uvicorn's access log prints query strings: keep both quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True
