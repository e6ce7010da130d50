"""One settings object, built once from the command line and the environment.

Nothing else in the package reads ``os.environ``: stages get what they need through constructor
arguments (see STYLE.md, "Configuration flows one way").
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ENV_PREFIX = "TESTMODE_PROXY_"


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Limits:
    """Edge limits; defaults from shared/reference/reliability.md (Envoy edge best practices)."""

    max_body_bytes: int = 1024 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_json_depth: int = 64
    max_json_values: int = 500_000  # bodies over 64 KiB: separators counted before parsing (stages/body.py)
    body_timeout: float = 30.0
    header_timeout: float = 10.0  # the whole request head; proxy/server.py
    max_request_line: int = 8192
    drain_timeout: float = 20.0  # SIGTERM: in-flight requests and due deliveries get this long
    max_in_flight: int = 1024
    upstream_connect_timeout: float = 5.0
    upstream_total_timeout: float = 15.0
    upstream_pool_size: int = 256
    upstream_pool_wait: float = 1.0  # a full pool is the gateway's overload: 503 after this (proxy/slots.py)
    upstream_keepalive_seconds: float = 15.0
    upstream_max_header_bytes: int = 64 * 1024  # the provider's response head: 502 past either
    upstream_max_headers: int = 100
    verify_timeout: float = 5.0
    # Pass-through key verifications (provider calls for keys with no cached verdict), per client
    # address and for the whole process: token buckets, per minute with a burst (proxy/keys/ratelimit.py).
    verify_client_per_minute: float = 30.0
    verify_client_burst: int = 10
    verify_global_per_minute: float = 600.0
    verify_global_burst: int = 100


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    policies_dir: Path = Path("policies")
    keys_file: Path | None = None
    state_dir: Path = Path("var")
    state_synchronous: Literal["normal", "full"] = "normal"  # proxy/store/database.py says why
    idempotency_retention: float = 86_400.0  # seconds after completion; Sent documents 24 h
    log_level: str = "info"
    access_log: bool = False
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    upstreams: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    # Peers whose X-Forwarded-For names the client (addresses or CIDR blocks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Webhook delivery (proxy/webhooks/): networks a subscription may reach although they are not public
    # (never a default: tests and local development set it), a hosts file answering first for the names
    # it lists, and the cap on attempts in flight.
    webhook_allow_private: str = ""
    webhook_hosts: Path | None = None
    webhook_concurrency: int = 32

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``TESTMODE_PROXY_*`` variables; explicit ``overrides`` (the command line) win."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(ENV_PREFIX + name)

        values: dict[str, object] = {}
        if (v := get("HOST")) is not None:
            values["host"] = v
        if (v := get("PORT")) is not None:
            values["port"] = int(v)
        if (v := get("POLICIES")) is not None:
            values["policies_dir"] = Path(v)
        if v := get("KEYS"):
            values["keys_file"] = Path(v)
        if (v := get("STATE_DIR")) is not None:
            values["state_dir"] = Path(v)
        if (v := get("STATE_SYNCHRONOUS")) is not None:
            if v.lower() not in ("normal", "full"):
                raise ValueError(f"{ENV_PREFIX}STATE_SYNCHRONOUS must be 'normal' or 'full', not {v!r}")
            values["state_synchronous"] = v.lower()
        if (v := get("IDEMPOTENCY_RETENTION")) is not None:
            if not 0 < float(v) < math.inf:
                raise ValueError(f"{ENV_PREFIX}IDEMPOTENCY_RETENTION must be a positive number of seconds, not {v!r}")
            values["idempotency_retention"] = float(v)
        if (v := get("LOG_LEVEL")) is not None:
            values["log_level"] = v.lower()
        if v := get("TRUSTED_PROXIES"):
            values["trusted_proxies"] = _networks(v)
        if (v := get("ACCESS_LOG")) is not None:
            values["access_log"] = v.lower() in {"1", "true", "yes", "on"}
        values["credentials"] = _credentials(env, get("CREDENTIALS_DIR"))
        # TESTMODE_PROXY_UPSTREAM_CONNECT_TIMEOUT & co. are limits, not a policy's base URL.
        values["upstreams"] = {
            name: url for name, url in _by_policy(env, "UPSTREAM_").items()
            if f"upstream_{name}" not in Limits.__dataclass_fields__
        }
        limits = {}
        for name in Limits.__dataclass_fields__:
            if (v := get(name.upper())) is not None:
                kind = type(getattr(Limits, name))
                limits[name] = kind(v)
        values["limits"] = Limits(**limits)
        if (v := get("WEBHOOK_ALLOW_PRIVATE")) is not None:
            from proxy.webhooks.ssrf import parse_allowlist

            try:
                parse_allowlist(v)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}WEBHOOK_ALLOW_PRIVATE: {exc}") from exc
            values["webhook_allow_private"] = v
        if v := get("WEBHOOK_HOSTS"):
            values["webhook_hosts"] = Path(v)
        if (v := get("WEBHOOK_CONCURRENCY")) is not None:
            values["webhook_concurrency"] = int(v)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _networks(text: str) -> tuple[str, ...]:
    """``10.0.0.0/8, 127.0.0.1`` → the entries, each checked to be an address or CIDR block."""
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}TRUSTED_PROXIES: {entry!r} is not an address or CIDR block") from exc
    return entries


def _by_policy(env: Mapping[str, str], infix: str) -> dict[str, str]:
    prefix = ENV_PREFIX + infix
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix) and v}


def _credentials(env: Mapping[str, str], directory: str | None) -> dict[str, Secret]:
    """Provider credentials: one file per policy name in a mounted secret dir, or an env var each."""
    found: dict[str, Secret] = {}
    if directory:
        root = Path(directory)
        if root.is_dir():
            for item in sorted(root.iterdir()):
                if item.is_file() and not item.name.startswith("."):
                    found[item.name.lower()] = Secret(item.read_text().strip())
    for name, value in _by_policy(env, "CREDENTIAL_").items():
        found[name] = Secret(value)
    return found
