"""The issued-key registry: a JSON file of key digests, managed by ``testmode-proxy keys``.

File format (``version: 2``)::

    {"version": 2, "keys": [{"id": "key_…", "policy": "sent", "mode": "test", "scopes": ["*"],
                             "digest": "<sha256 hex>", "label": "ci", "created_at": "…",
                             "workspace": "team-a"}]}

``workspace`` (version 2, test keys only, optional) binds a sandbox key to a named workspace that other
keys may share (``keys create --workspace NAME``); without it a sandbox key has a workspace of its own.
Version 1 files (no ``workspace``) are read as they are. A file is written as version 2 once one of its
keys has a workspace, and as version 1 until then, so a gateway that only knows version 1 (a rollback)
keeps reading registries that do not use workspaces.

The raw key is printed once by ``keys create`` and never stored. The server checks the file at most every
``reload_interval`` seconds and re-reads it when it changes (another inode, modification time or size), so
keys created or revoked while it runs take effect without a restart. What a change can leave behind:

* **The file is gone** (deleted, or a mounted Secret removed): an empty registry, so every issued key is
  refused from the next check on. Deleting the file is how an operator revokes everything at once, and a
  registry that kept serving keys nobody can see any more would hide that they still work (security issue
  #10, item 10). Logged as an error once per disappearance; the keys come back when the file does.
* **The file is unreadable or does not parse** (a half-written copy from a non-atomic writer, a bad edit, a
  permission change): the last good snapshot stays, and the error is logged once per version of the file.
  Such a file says nothing about intent, and dropping every key for a typo would take every client down.

A file that does not parse at start-up stops the server (:class:`RegistryError`); a file that is missing at
start-up is an empty registry, logged as an error.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from proxy.keys.identity import KeyIdentity, Mode, digest

log = structlog.get_logger("proxy.keys")
_ALPHABET = string.ascii_letters + string.digits
VERSION = 2
VERSIONS = (1, 2)  # version 1 has no `workspace`
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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
    workspace: str | None = None  # version 2: the named sandbox workspace of a test key

    def as_json(self) -> dict[str, Any]:
        doc = {"id": self.id, "policy": self.policy, "mode": self.mode, "scopes": sorted(self.scopes),
               "digest": self.digest, "label": self.label, "created_at": self.created_at}
        return {**doc, "workspace": self.workspace} if self.workspace else doc


def parse_registry(text: str, source: str) -> dict[str, IssuedKey]:
    if not text.strip():  # a new, empty file (touch keys.json) holds no keys
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RegistryError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") not in VERSIONS or not isinstance(doc.get("keys"), list):
        raise RegistryError(f"{source}: expected {{'version': {VERSION}, 'keys': [...]}} (or version 1)")
    found: dict[str, IssuedKey] = {}
    for i, item in enumerate(doc["keys"]):
        try:
            key = IssuedKey(
                id=str(item["id"]), policy=str(item["policy"]), mode=item["mode"],
                scopes=frozenset(str(s) for s in item["scopes"]), digest=str(item["digest"]).lower(),
                label=str(item.get("label", "")), created_at=str(item.get("created_at", "")),
                workspace=_workspace(item.get("workspace"), item["mode"], f"{source}: keys.{i}"),
            )
        except (KeyError, TypeError) as exc:
            raise RegistryError(f"{source}: keys.{i}: missing or malformed field {exc}") from exc
        if key.mode not in ("live", "test") or len(key.digest) != 64:
            raise RegistryError(f"{source}: keys.{i}: mode must be live|test and digest a sha256 hex")
        found[key.digest] = key
    return found


# What identifies one version of the file: an atomic replace (``write_registry``, a Kubernetes Secret update)
# makes a new inode, so a rewrite within the file system's timestamp granularity is still seen.
_Signature = tuple[int, int, int]
_MISSING: _Signature = (-1, -1, -1)  # the file is gone
_UNSTATABLE: _Signature = (-2, -2, -2)  # stat itself failed (a permission on a parent directory, an I/O error)


def _signature(stat: os.stat_result) -> _Signature:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class KeyRegistry:
    """Looks up presented keys by digest; reloads the file when it changes (see the module docstring)."""

    def __init__(
        self, path: Path | None, reload_interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self.reload_interval = reload_interval
        self._clock = clock
        self._identities: dict[str, KeyIdentity] = {}
        self._keys: dict[str, IssuedKey] = {}
        self._signature: _Signature | None = None  # of the snapshot in use; _MISSING when the file is gone
        self._failed: _Signature | None = None  # the version whose failure was last logged
        self._checked = clock()
        if path is None:
            return
        try:
            signature = _signature(path.stat())
        except (FileNotFoundError, NotADirectoryError):
            self._lose_file()
            return
        self._use(parse_registry(path.read_text(), str(path)), signature)

    def __len__(self) -> int:
        return len(self._keys)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if self.path is None or now - self._checked < self.reload_interval:
            return
        self._checked = now
        self._reload(self.path)

    def _reload(self, path: Path) -> None:
        try:
            signature = _signature(path.stat())
        except (FileNotFoundError, NotADirectoryError):
            self._lose_file()
            return
        except OSError as exc:
            self._keep_snapshot(_UNSTATABLE, exc)
            return
        if signature == self._signature:
            return
        try:
            keys = parse_registry(path.read_text(), str(path))
        except (FileNotFoundError, NotADirectoryError):  # deleted between stat and read
            self._lose_file()
        except (OSError, ValueError) as exc:  # RegistryError, and UnicodeDecodeError for a binary file
            self._keep_snapshot(signature, exc)
        else:
            self._use(keys, signature)
            log.info("key_registry_reloaded", path=str(path), keys=len(keys))

    def _use(self, keys: dict[str, IssuedKey], signature: _Signature) -> None:
        self._keys, self._identities = keys, {}
        self._signature, self._failed = signature, None

    def _lose_file(self) -> None:
        if self._signature == _MISSING:
            return  # logged when it went
        dropped = len(self._keys)
        self._use({}, _MISSING)
        log.error("key_registry_missing", path=str(self.path), keys_dropped=dropped,
                  effect="every issued key is refused until the file is back")

    def _keep_snapshot(self, signature: _Signature, exc: Exception) -> None:
        if signature == self._failed:
            return  # this version's failure is already logged
        self._failed = signature
        log.error("key_registry_reload_failed", path=str(self.path), error=str(exc), keys_kept=len(self._keys))

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


def _workspace(value: Any, mode: Any, where: str) -> str | None:
    """A key's workspace name: none, or a name (test keys only: a live key has no sandbox)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not WORKSPACE_NAME.fullmatch(value):
        raise RegistryError(f"{where}: workspace must be 1-64 of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    if mode != "test":
        raise RegistryError(f"{where}: only a test (sandbox) key has a workspace")
    return value


def create_key(
    path: Path, policy: str, mode: Mode, scopes: list[str], prefix: str, label: str = "",
    workspace: str | None = None,
) -> tuple[str, IssuedKey]:
    """Add a key to the registry file (atomically: write a temp file, then rename) and return it once."""
    existing = parse_registry(path.read_text(), str(path)) if path.exists() else {}
    raw = new_key(prefix)
    entry = IssuedKey(
        id="key_" + secrets.token_hex(6), policy=policy, mode=mode, scopes=frozenset(scopes),
        digest=digest(raw), label=label, created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        workspace=_workspace(workspace, mode, "workspace"),
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
    keys = list(keys)
    doc = {"version": VERSION if any(k.workspace for k in keys) else 1, "keys": [k.as_json() for k in keys]}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
