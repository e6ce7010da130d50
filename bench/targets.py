"""The targets of one run: what each server is, what it is sent, and how its answer is checked.

Every target receives the same request shape (POST /v3/messages, JSON, an ``x-api-key``), but for the
``sandbox`` target (Blueticked's POST /v1/messages with its own sandbox key: bench/sandbox.py); a
target is measured only after one request shows it answers what it should (a synthesized test-mode
201, the upstream's own 201 relayed, a sandbox 202 queued), so a fast wrong answer can never pass as a
result.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import sandbox, servers
from bench.workload import LIVE_BODY, PATH, TEST_BODY, UPSTREAM_BODY, UPSTREAM_MARKER

LOAD_CORE = 0  # wrk, and the upstream the proxies talk to
SERVER_CORE = 1  # the server being measured, alone

Check = Callable[[int, dict[str, str], bytes], str | None]


def _relayed(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 201 or UPSTREAM_MARKER.encode() not in body:
        return f"expected the upstream's 201 relayed, got {status}: {body[:200]!r}"
    return None


def _synthesized(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if status != 201 or headers.get("x-test-mode") != "true" or UPSTREAM_MARKER.encode() in body:
        return f"expected a synthesized test-mode 201, got {status} {headers.get('x-test-mode')}: {body[:200]!r}"
    return None


def _replayed(status: int, headers: dict[str, str], body: bytes) -> str | None:
    if headers.get("idempotent-replayed") != "true":
        return f"expected a replay (Idempotent-Replayed: true), got {status} {headers}"
    return _synthesized(status, headers, body)


def _created(status: int, headers: dict[str, str], body: bytes) -> str | None:
    return None if status == 201 else f"expected 201, got {status}: {body[:200]!r}"


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    server: str  # key into the started servers
    body: str
    check: Check
    idempotency: str | None = None  # "fresh": a new Idempotency-Key per request; "replay": one key, replayed
    path: str = PATH
    key: str | None = None  # a key of its own (set by its setup), instead of the run's Sent live key
    key_header: str = "x-api-key"
    key_scheme: str = ""  # "Bearer " for Authorization


REPLAY_KEY = "bench-replay"


TARGETS = (
    Target("testmode", "gateway, test-mode path (all stages)", "gateway", TEST_BODY, _synthesized),
    Target("testmode-key", "gateway, test-mode path, a fresh Idempotency-Key per request", "gateway", TEST_BODY,
           _synthesized, "fresh"),
    Target("testmode-replay", "gateway, test-mode path, one Idempotency-Key replayed", "gateway", TEST_BODY,
           _replayed, "replay"),
    Target("live", "gateway, live path as deployed (live.validate: false)", "gateway", LIVE_BODY, _relayed),
    Target("live-validate", "gateway, live path with live.validate: true", "gateway-validate", LIVE_BODY,
           _relayed),
    Target("starlette", "bare Starlette, one route, orjson parse + dump", "starlette", TEST_BODY, _created),
    Target("raw-asgi", "raw ASGI callable, orjson parse + dump (the floor)", "raw-asgi", TEST_BODY, _created),
    Target("aiohttp", "naive Starlette + aiohttp.ClientSession proxy", "aiohttp", LIVE_BODY, _relayed),
    Target("httpx", "naive Starlette + httpx.AsyncClient proxy", "httpx", LIVE_BODY, _relayed),
    Target("upstream", "the upstream directly", "upstream", LIVE_BODY, _relayed),
    Target("sandbox", "gateway, sandbox send (Blueticked workspace, SQLite)", "gateway-sandbox", "",
           sandbox.queued, path=sandbox.PATH, key_header="authorization", key_scheme="Bearer "),
)
BY_NAME = {t.name: t for t in TARGETS}


@dataclass(frozen=True)
class Variant:
    """Another gateway build to measure side by side: a source tree and extra environment (``--variant``)."""

    name: str
    src: Path
    env: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``NAME=SRC[,KEY=VALUE...]``, e.g. ``gc=/tmp/scratch,OPT_GC=1``."""
        name, _, rest = text.partition("=")
        src, *pairs = rest.split(",")
        if not name or not src or not all("=" in pair for pair in pairs):
            raise ValueError(f"--variant {text!r}: expected NAME=SRC[,KEY=VALUE...]")
        return cls(name, Path(src).resolve(), dict(pair.split("=", 1) for pair in pairs))

    def targets(self) -> list[Target]:
        server = f"gateway@{self.name}"
        return [Target(f"testmode@{self.name}", f"variant {self.name}: test-mode path", server, TEST_BODY,
                       _synthesized),
                Target(f"live@{self.name}", f"variant {self.name}: live path", server, LIVE_BODY, _relayed)]


def validating_policies(source: Path, work: Path) -> Path:
    """A copy of the policy directory with Sent's ``live.validate`` switched on."""
    copy = work / "policies-validate"
    shutil.copytree(source, copy)
    sent = copy / "sent.yaml"
    text, count = re.subn(r"(?m)^(live:\n(?:(?:[ \t]+.*|[ \t]*)\n)*?[ \t]+validate:[ \t]*)false\b", r"\1true",
                          sent.read_text())
    if count != 1:
        raise servers.SetupError(f"{sent}: could not find `live: validate: false` to switch on")
    sent.write_text(text)
    return copy


def slow_lifecycle_policies(source: Path, work: Path) -> Path:
    """A copy of the policy directory with Blueticked's lifecycle step at an hour (bench/sandbox.py says why)."""
    copy = work / "policies-sandbox"
    shutil.copytree(source, copy)
    blueticked = copy / "blueticked.yaml"
    text, count = re.subn(r"(?m)^(\s+step_seconds:)\s*[0-9.]+$", r"\1 3600", blueticked.read_text())
    if count != 1:
        raise servers.SetupError(f"{blueticked}: could not find `lifecycle: step_seconds:` to lengthen")
    blueticked.write_text(text)
    return copy


def start_all(wanted: list[Target], *, upstream: str, src: Path, policies: Path, work: Path,
              keys_file: Path, variants: tuple[Variant, ...] = ()) -> dict[str, servers.Server]:
    """Start the servers the wanted targets need; the proxies' upstream runs on the load generator's core."""
    needed = {target.server for target in wanted}
    started: dict[str, servers.Server] = {}

    def upstream_on(name: str, core: int) -> servers.Server:
        if upstream == "nginx":
            return servers.start_nginx(name, core, work, UPSTREAM_BODY)
        return servers.start_uvicorn(name, "bench.apps.upstream:app", core, work)

    try:
        if needed - {"starlette", "raw-asgi", "upstream"}:  # a proxy or a gateway
            started["proxied-upstream"] = upstream_on("proxied-upstream", LOAD_CORE)
        proxied = started["proxied-upstream"].url if "proxied-upstream" in started else ""
        if "upstream" in needed:
            started["upstream"] = upstream_on("upstream", SERVER_CORE)
        if "starlette" in needed:
            started["starlette"] = servers.start_uvicorn("starlette", "bench.apps.bare:app", SERVER_CORE, work)
        if "raw-asgi" in needed:
            started["raw-asgi"] = servers.start_uvicorn("raw-asgi", "bench.apps.raw:app", SERVER_CORE, work)
        for name in ("aiohttp", "httpx"):
            if name in needed:
                started[name] = servers.start_uvicorn(name, f"bench.apps.naive_{name}:app", SERVER_CORE, work,
                                                      env={"BENCH_UPSTREAM": proxied})
        if "gateway" in needed:
            started["gateway"] = servers.start_gateway("gateway", src, SERVER_CORE, work, policies, keys_file,
                                                       proxied)
        if "gateway-sandbox" in needed:
            started["gateway-sandbox"] = servers.start_gateway(
                "gateway-sandbox", src, SERVER_CORE, work, slow_lifecycle_policies(policies, work), keys_file, proxied)
        if "gateway-validate" in needed:
            started["gateway-validate"] = servers.start_gateway(
                "gateway-validate", src, SERVER_CORE, work, validating_policies(policies, work), keys_file, proxied)
        for variant in variants:
            name = f"gateway@{variant.name}"
            if name in needed:
                started[name] = servers.start_gateway(name, variant.src, SERVER_CORE, work,
                                                      variant.src / "policies", keys_file, proxied, variant.env)
        for name, server in started.items():
            servers.wait_until_up(server, "/readyz" if name.startswith("gateway") else "/")
    except BaseException:
        for server in started.values():
            server.stop()
        raise
    return started


def verify(target: Target, server: servers.Server, key: str) -> None:
    sent = {"content-type": "application/json", target.key_header: target.key_scheme + (target.key or key)}
    if target.idempotency == "fresh":
        sent["Idempotency-Key"] = "bench-verify"
    elif target.idempotency == "replay":  # the first answer, recorded: what every measured request replays
        sent["Idempotency-Key"] = REPLAY_KEY
        servers.request(server.url + target.path, "POST", target.body, sent)
    status, headers, body = servers.request(server.url + target.path, "POST", target.body, sent)
    if (problem := target.check(status, headers, body)) is not None:
        raise servers.SetupError(f"{target.name}: {problem}")
    if target.name == "live-validate":  # prove validation really runs on live requests in this variant
        invalid = TEST_BODY.replace('"test_mode": true, ', "").replace("+15555550100", "not-a-phone")
        status, _, body = servers.request(server.url + PATH, "POST", invalid,
                                          {"content-type": "application/json", "x-api-key": key})
        if status != 400:
            raise servers.SetupError(f"live-validate: an invalid live body got {status}, not 400: {body[:200]!r}")
