"""Forward's response-header filter (RFC 9110 §7.6.1), on a stand-in for aiohttp's response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from proxy.context import RequestContext
from proxy.forward import Forward
from proxy.metrics import Metrics
from proxy.policy.loader import load_policies
from proxy.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


class _Response:
    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw_headers = tuple(raw)
        self.headers = CIMultiDictProxy(CIMultiDict((k.decode(), v.decode()) for k, v in raw))


def _forward() -> Forward:
    settings = Settings.from_env({})
    return Forward(policies=load_policies(ROOT / "policies"), limits=settings.limits,
                   metrics=Metrics(CollectorRegistry()))


def _filter(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    response: Any = _Response(raw)
    return _forward()._response_headers(response, RequestContext("x", "req_x"))


def test_end_to_end_headers_pass_lower_cased_in_order() -> None:
    assert _filter([(b"Content-Type", b"application/json"), (b"X-Request-Id", b"req_1"), (b"Date", b"d")]) == [
        (b"content-type", b"application/json"), (b"x-request-id", b"req_1"), (b"date", b"d")]


def test_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    raw = [(b"Connection", b"keep-alive, X-Trace"), (b"Keep-Alive", b"timeout=5"), (b"X-Trace", b"t"),
           (b"Transfer-Encoding", b"chunked"), (b"X-Kept", b"k")]
    assert _filter(raw) == [(b"x-kept", b"k")]


def test_without_a_connection_header_only_the_fixed_hop_by_hop_set_goes() -> None:
    assert _filter([(b"Keep-Alive", b"timeout=5"), (b"X-Trace", b"t")]) == [(b"x-trace", b"t")]
