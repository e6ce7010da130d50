"""The issued-key registry: a JSON file of key digests, managed by ``testmode-proxy keys``.

File format (``version: 1``)::

    {"version": 1, "keys": [{"id": "key_…", "policy": "sent", "mode": "test", "scopes": ["*"],
                             "digest": "<sha256 hex>", "label": "ci", "created_at": "…"}]}

The raw key is printed once by ``keys create`` and never stored. The server re-reads the file when
its modification time changes (checked at most every ``reload_interval`` seconds), so keys created
or revoked while it runs take effect without a restart; a file that fails to parse keeps the last
good snapshot and logs an error.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from proxy.keys.identity import KeyIdentity, Mode, digest

log = structlog.get_logger("proxy.keys")
_ALPHABET = string.ascii_letters + string.digits


class RegistryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    policy: str
    mode: Mode
    scopes: frozenset[str]
    digest: str
    label: str = ""
    created_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "policy": self.policy, "mode": self.mode, "scopes": sorted(self.scopes),
                "digest": self.digest, "label": self.label, "created_at": self.created_at}


def parse_registry(text: str, source: str) -> dict[str, IssuedKey]:
    if not text.strip():  # a new, empty file (touch keys.json) holds no keys
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RegistryError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("keys"), list):
        raise RegistryError(f"{source}: expected {{'version': 1, 'keys': [...]}}")
    found: dict[str, IssuedKey] = {}
    for i, item in enumerate(doc["keys"]):
        try:
            key = IssuedKey(
                id=str(item["id"]), policy=str(item["policy"]), mode=item["mode"],
                scopes=frozenset(str(s) for s in item["scopes"]), digest=str(item["digest"]).lower(),
                label=str(item.get("label", "")), created_at=str(item.get("created_at", "")),
            )
        except (KeyError, TypeError) as exc:
            raise RegistryError(f"{source}: keys.{i}: missing or malformed field {exc}") from exc
        if key.mode not in ("live", "test") or len(key.digest) != 64:
            raise RegistryError(f"{source}: keys.{i}: mode must be live|test and digest a sha256 hex")
        found[key.digest] = key
    return found


class KeyRegistry:
    """Looks up presented keys by digest; reloads the file when it changes."""

    def __init__(self, path: Path | None, reload_interval: float = 2.0) -> None:
        self.path = path
        self.reload_interval = reload_interval
        self._identities: dict[str, KeyIdentity] = {}
        self._keys: dict[str, IssuedKey] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        if path is not None and path.exists():
            self._keys = parse_registry(path.read_text(), str(path))
            self._mtime = path.stat().st_mtime

    def __len__(self) -> int:
        return len(self._keys)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < self.reload_interval:
            return
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self._mtime:
            return
        try:
            self._keys = parse_registry(self.path.read_text(), str(self.path))
            self._identities = {}
            self._mtime = mtime
            log.info("key_registry_reloaded", keys=len(self._keys))
        except (RegistryError, OSError) as exc:
            log.error("key_registry_reload_failed", error=str(exc))

    def lookup(self, presented: str) -> IssuedKey | None:
        """The issued key for ``presented``, whatever its policy (callers check ``entry.policy``)."""
        self._maybe_reload()
        wanted = digest(presented)
        entry = self._keys.get(wanted)
        if entry is None or not hmac.compare_digest(entry.digest, wanted):
            return None
        return entry

    def identity(self, entry: IssuedKey, presented: str, credential: Any) -> KeyIdentity:
        """The caller's identity, built once per key and snapshot (identities are immutable)."""
        cached = self._identities.get(entry.digest)
        if cached is None or cached.forward_credential is not credential or cached.presented != presented:
            cached = KeyIdentity(entry.id, "issued", entry.mode, entry.scopes, credential, presented)
            self._identities[entry.digest] = cached
        return cached


def new_key(prefix: str, length: int = 40) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def create_key(
    path: Path, policy: str, mode: Mode, scopes: list[str], prefix: str, label: str = ""
) -> tuple[str, IssuedKey]:
    """Add a key to the registry file (atomically: write a temp file, then rename) and return it once."""
    existing = parse_registry(path.read_text(), str(path)) if path.exists() else {}
    raw = new_key(prefix)
    entry = IssuedKey(
        id="key_" + secrets.token_hex(6), policy=policy, mode=mode, scopes=frozenset(scopes),
        digest=digest(raw), label=label, created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    existing[entry.digest] = entry
    write_registry(path, existing.values())
    return raw, entry


def revoke_key(path: Path, key_id: str) -> bool:
    existing = parse_registry(path.read_text(), str(path)) if path.exists() else {}
    kept = [k for k in existing.values() if k.id != key_id]
    if len(kept) == len(existing):
        return False
    write_registry(path, kept)
    return True


def list_keys(path: Path) -> list[IssuedKey]:
    return list(parse_registry(path.read_text(), str(path)).values()) if path.exists() else []


def write_registry(path: Path, keys: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    doc = {"version": 1, "keys": [k.as_json() for k in keys]}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
