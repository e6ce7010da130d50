"""The checks a send must pass, whoever answers it: a workspace (sandbox key) or Blueticked's own data
read back with a live key (validate-only, :mod:`proxy.sandbox.lookups`).

Pure functions over plain values, so both callers refuse a send for the same reasons, with the same
policy error codes: the recipient's channel, suppression, the template's status, its variables and
its document header. Each returns nothing or raises the policy's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.sandbox import placeholders
from proxy.sandbox.spec import SandboxSpec


def recipient(body: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """(phone, email, the identifier named in errors) of a send's ``to``."""
    to = body["to"]
    phone, email = to.get("phone"), to.get("email")
    return phone, email, phone or email


def address(spec: SandboxSpec, channel: str, phone: str | None, email: str | None) -> str:
    """The contact's address on ``channel``: its phone (WhatsApp, SMS) or email; refused without one."""
    needs = "email" if channel == "email" else "phone"
    value = email if channel == "email" else phone
    if value is None:
        raise spec.error("contact_no_channel", needs=needs, channel=channel)
    return value


def suppressed(spec: SandboxSpec, identifier: str, reason: str | None) -> None:
    if reason is not None:
        raise spec.error("recipient_suppressed", identifier=identifier, reason=reason)


def template_preview(spec: SandboxSpec, body: Mapping[str, Any], template: Mapping[str, Any]) -> str:
    """The template's body filled in, after checking it may send with these variables and document."""
    if template.get("status") != "approved":
        raise spec.error("template_not_approved", id=template.get("id"), status=template.get("status"))
    variables = body.get("template_variables") or {}
    text = str(template.get("body") or "")
    missing, unknown = placeholders.variable_gaps(text, variables)
    if missing:
        raise spec.error("template_variables_missing", names=", ".join(missing))
    if unknown:
        raise spec.error("template_variables_unknown", names=", ".join(unknown))
    has_document_header = template.get("header_format") == "document"
    if has_document_header and "document" not in body:
        raise spec.error("document_required")
    if not has_document_header and "document" in body:
        raise spec.error("document_not_applicable")
    return placeholders.render(text, variables)


def free_text_preview(spec: SandboxSpec, body: Mapping[str, Any]) -> str:
    """A send without a template: its own text is the preview (``document`` needs a template)."""
    if "document" in body:
        raise spec.error("document_not_applicable")
    return str(body.get("body") or body.get("html") or "")
