"""Who is calling: the result of authentication, read by the later stages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from proxy.settings import Secret

Mode = Literal["live", "test"]


@lru_cache(maxsize=4096)  # the same few keys arrive on every request; the cache is C, sha256 is not free
def digest(key: str) -> str:
    """Keys are stored and compared as SHA-256 digests (they are high-entropy, so no KDF is needed)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """``key_id`` is safe to log; ``forward_credential`` is what a live forward presents upstream."""

    key_id: str
    kind: Literal["issued", "passthrough"]
    mode: Mode | None  # issued keys carry a mode; pass-through keys are decided by the triggers
    scopes: frozenset[str]
    forward_credential: Secret | None
    presented: str  # the raw key as presented (for prefix triggers); never logged

    def allows(self, scope: str) -> bool:
        """``*`` covers all; ``messages:*`` covers ``messages:write``; otherwise an exact match."""
        if "*" in self.scopes or scope in self.scopes:
            return True
        family = scope.split(":", 1)[0]
        return f"{family}:*" in self.scopes

    def __repr__(self) -> str:
        return f"KeyIdentity({self.key_id!r}, {self.kind}, {self.mode})"
