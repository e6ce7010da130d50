"""How a delivery is signed: a scheme is data (header names, prefix, encoding), two kinds of signature.

* ``body_hmac``: an HMAC-SHA256 of the raw body alone, keyed with the secret string as written.
  Blueticked's (``shared/reference/blueticked.md`` §4): ``x-blueticked-event: <name>`` and
  ``x-blueticked-signature: sha256=<lower-case hex>``, no timestamp, no id header.
* ``standard_webhooks``: Standard Webhooks v1 (``reliability.md``): ``webhook-id`` (the event id, stable
  across attempts), ``webhook-timestamp`` (this attempt's Unix seconds) and ``webhook-signature:
  v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the base64-decoded part of a
  ``whsec_`` secret.

A policy names a built-in scheme (``signing: blueticked``) or writes one out as a mapping with the same
fields (:func:`compile_scheme`); both are compiled once at load.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Kind = Literal["body_hmac", "standard_webhooks"]
Encoding = Literal["hex", "base64"]


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    kind: Kind
    signature_header: str
    prefix: str  # written before the digest: ``sha256=``, ``v1,``
    encoding: Encoding
    event_header: str | None = None  # carries the event's name (Blueticked), if any
    id_header: str = "webhook-id"  # standard_webhooks only
    timestamp_header: str = "webhook-timestamp"  # standard_webhooks only
    secret_prefix: str = "whsec_"

    def new_secret(self) -> str:
        """``whsec_`` + base64 of 32 random bytes: the format Standard Webhooks requires (≥ 24 bytes).
        Blueticked's own secret format is not documented (≈): the same shape, used as the key as written."""
        return self.secret_prefix + base64.b64encode(os.urandom(32)).decode()

    def check_secret(self, secret: str) -> str | None:
        """Why a secret a user supplied cannot be used with this scheme, or None."""
        if not secret.isascii() or not secret.isprintable() or any(c.isspace() for c in secret):
            return "the secret must be printable ASCII without spaces"
        if self.kind == "standard_webhooks":
            try:
                key = _standard_key(secret, self.secret_prefix)
            except (binascii.Error, ValueError):
                return f"the secret must be '{self.secret_prefix}' followed by base64"
            if len(key) < 24:
                return "the secret must hold at least 24 random bytes (Standard Webhooks)"
        elif len(secret) < 24:
            return "the secret must be at least 24 characters"
        return None

    def headers(self, secret: str, event_id: str, event_type: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The headers that sign ``body`` for one attempt (lower-case names)."""
        headers: dict[str, str] = {}
        if self.event_header:
            headers[self.event_header] = event_type
        if self.kind == "body_hmac":
            digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        else:
            headers[self.id_header] = event_id
            headers[self.timestamp_header] = str(timestamp)
            signed = f"{event_id}.{timestamp}.".encode() + body
            digest = hmac.new(_standard_key(secret, self.secret_prefix), signed, hashlib.sha256).digest()
        encoded = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        headers[self.signature_header] = self.prefix + encoded
        return headers


def _standard_key(secret: str, prefix: str) -> bytes:
    raw = secret.removeprefix(prefix)
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)


BUILT_IN: dict[str, Scheme] = {
    "blueticked": Scheme("blueticked", "body_hmac", "x-blueticked-signature", "sha256=", "hex",
                         event_header="x-blueticked-event"),
    "standard_webhooks": Scheme("standard_webhooks", "standard_webhooks", "webhook-signature", "v1,", "base64"),
}
DEFAULT_SCHEME = BUILT_IN["standard_webhooks"]


class SchemeError(ValueError):
    """A ``signing`` section that cannot be used (the policy loader words it with file and key path)."""


def compile_scheme(node: str | Mapping[str, Any]) -> Scheme:
    """``blueticked`` | ``standard_webhooks`` | a mapping: ``{base: <built-in>, <field>: <value>…}`` or every field."""
    if isinstance(node, str):
        if node not in BUILT_IN:
            raise SchemeError(f"unknown signing scheme {node!r} (built in: {', '.join(BUILT_IN)})")
        return BUILT_IN[node]
    fields = dict(node)
    base = fields.pop("base", None)
    if base is not None and base not in BUILT_IN:
        raise SchemeError(f"unknown base scheme {base!r} (built in: {', '.join(BUILT_IN)})")
    known = set(Scheme.__dataclass_fields__)
    if unknown := sorted(set(fields) - known):
        raise SchemeError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for name in ("signature_header", "event_header", "id_header", "timestamp_header"):
        if isinstance(fields.get(name), str):
            fields[name] = fields[name].lower()
    try:
        scheme = replace(BUILT_IN[base], **fields) if base else Scheme(**fields)
    except TypeError as exc:
        raise SchemeError(f"incomplete scheme: {exc}") from exc
    if scheme.kind not in ("body_hmac", "standard_webhooks"):
        raise SchemeError(f"kind must be body_hmac or standard_webhooks, not {scheme.kind!r}")
    if scheme.encoding not in ("hex", "base64"):
        raise SchemeError(f"encoding must be hex or base64, not {scheme.encoding!r}")
    return scheme
