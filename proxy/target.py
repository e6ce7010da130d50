"""What a request asks for: its path, canonicalised once, and its method, judged against the policy.

:func:`clean_path` is called once, by the *route* stage; routing and forwarding then use the one string
it returns (:mod:`proxy.forward` joins it onto the policy's origin and never reads ``raw_path``). It
takes the path as received (``scope["raw_path"]``, not uvicorn's decoded ``scope["path"]``) and either
returns it in canonical form or raises a 400:

* **Refused**, because a server or proxy on the way might read it as something else: anything but
  origin-form (``*``; absolute-form ``http://host/path`` arrives already reduced to its path by
  uvicorn, and its host is never followed: RFC 9112 §3.2.2), an empty segment
  (``//``; so the path can never start an authority), an encoded ``/`` or ``\\`` (``%2f``, ``%5c``: one
  segment to us, two to a server that decodes first), a literal ``\\``, NUL and other control bytes
  (``%00``-``%1f``, ``%7f``), a ``.`` or ``..`` segment however spelled (``%2e%2e``, ``..;`` as
  Tomcat reads it: RFC 3986 §5.2.4 would move the request to another resource), a malformed escape
  (``%zz``, a lone ``%``), and any byte RFC 3986 §3.3 does not allow in a path.
* **Normalised**: an escaped unreserved character (``%63``, ``%7E``) is decoded, as RFC 3986 §6.2.2.2
  recommends, so the path the routes are matched on is the path the provider receives, and
  ``/se%6et/v3/%63ontacts`` is the ``/sent`` mount's ``/v3/contacts``.
* **Kept as received**: every other escape (``%20``, ``%40``, ``%3A``, UTF-8 such as ``%C3%A9``, ``%25``),
  and ``@``, ``:`` and the sub-delimiters, which RFC 3986 §3.3 allows in a path segment. A path
  parameter may hold a space or an email; they cannot reach the authority once the path starts with
  exactly one ``/`` and is joined onto a parsed origin. The path is decoded once, here, as the provider
  should decode it; ``%252f`` stays the text ``%2f`` in a segment.

Methods: a policy allows the methods its routes and its key check use, and ``HEAD`` wherever ``GET`` is
(RFC 9110 §9.3.2), compiled at load (:attr:`Policy.methods`); undeclared paths are forwarded with those
methods only. Any other is 405 with ``Allow``, before authentication: ``TRACE`` (which would echo the
swapped-in provider credential), ``CONNECT``, WebDAV's, and ``OPTIONS``. The gateway serves API clients
holding secret keys, not browsers, so it answers no CORS preflight and forwards none.
``X-HTTP-Method-Override`` and its kin are refused with 400 rather than stripped: the gateway judges
scope, test mode and simulation by the request's own method, a provider honouring the header would act
on another, and stripping it would deliver something other than what was sent.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.types import Scope

from proxy.errors import GatewayError
from proxy.policy.model import Policy

# RFC 3986 §3.3: path-abempty = *( "/" segment ); pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
_PATH_BYTES = b"/%ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_NEVER = frozenset({0x2F, 0x5C, 0x7F, *range(0x20)})  # '/', '\', DEL, control bytes (NUL included)
_DOT_SEGMENTS = frozenset({".", ".."})
# The spellings in common use (Google APIs, OData, and the method-override middlewares of web frameworks).
METHOD_OVERRIDE_HEADERS = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})

_TARGET_MESSAGE = ("The request target must be a plain path such as '/v3/messages': no '//', no encoded '/' or "
                   "'\\', no control characters, no '.' or '..' segments. Nothing was sent.")


def clean_path(scope: Scope) -> str:
    """The request's path as routes match it and as the provider will receive it; raise 400 otherwise."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:  # ASGI makes raw_path optional; uvicorn always sets it
        raw = quote(scope["path"], safe="/!$&'()*+,;=:@~").encode("ascii")
    # Origin-form, no empty segment (only a final "/" may end one), only path bytes: one C-level pass each.
    if raw[:1] != b"/" or b"//" in raw or raw.translate(None, _PATH_BYTES):
        raise bad_target()
    if b"%" in raw:
        if _MALFORMED_ESCAPE.search(raw):
            raise bad_target()
        raw = _ESCAPE.sub(_unescape, raw)
    path = raw.decode("ascii")
    if "/." in path:  # only then can a segment be a dot segment; checked after %2e has become "."
        for segment in path.split("/"):
            if segment.split(";", 1)[0] in _DOT_SEGMENTS:
                raise bad_target()
    return path


def _unescape(match: re.Match[bytes]) -> bytes:
    byte = int(match.group(1), 16)
    if byte in _UNRESERVED:
        return bytes((byte,))
    if byte in _NEVER:
        raise bad_target()
    return match.group(0)


def decoded_params(params: dict[str, str]) -> dict[str, str]:
    """Path parameters as the client meant them (``a%40b.example`` is ``a@b.example``), for templates."""
    if any("%" in value for value in params.values()):
        return {name: unquote(value) for name, value in params.items()}
    return params


def bad_target() -> GatewayError:
    return GatewayError(400, "bad_request", _TARGET_MESSAGE, reason="bad_target")


def refuse_method_override(headers: dict[str, str]) -> None:
    """400 when the request asks a provider to act as if it had another method."""
    if not headers.keys().isdisjoint(METHOD_OVERRIDE_HEADERS):
        name = min(METHOD_OVERRIDE_HEADERS.intersection(headers))
        raise GatewayError(400, "bad_request",
                           f"The {name} header is not accepted: send the request with the method you mean. "
                           "Nothing was sent.", reason="method_override")


def require_method(policy: Policy, method: str) -> None:
    """405 (with ``Allow``) for a method none of the policy's routes use (RFC 9110 §15.5.6)."""
    if method not in policy.methods:
        raise GatewayError(405, "method_not_allowed",
                           f"{method[:20]} is not allowed here; allowed: {policy.allow}. Nothing was sent.",
                           headers={"allow": policy.allow})
