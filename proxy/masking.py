"""Personal data and secrets in logs: phone numbers and emails are masked, never written whole, and free text
loses anything shaped like a key (OWASP logging)."""

from __future__ import annotations

import re

_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_E164 = re.compile(r"\+\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
# Sent/Stripe-style keys, SendGrid keys, Standard Webhooks secrets: a client that puts one in a path
# (an undeclared route is logged as sent) must not have it written down (issue 15, the secret canary).
_SECRET = re.compile(r"\b((?:sk|rk|pk)_(?:live|test)_|SG\.)[A-Za-z0-9_.-]{6,}|\b(whsec_)[A-Za-z0-9+/=]{6,}")


def mask_phone(number: str) -> str:
    """``+15555550100`` → ``+1******0100``: country-code hint and last four digits only."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return "*" * len(number)
    head = "+" + digits[0] if number.startswith("+") else digits[0]
    return head + "*" * (len(digits) - 5) + digits[-4:]


def mask_email(address: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", address)


def mask_text(text: str) -> str:
    """Mask every key-like, email-like and phone-number-like run inside free text (paths, error messages)."""
    text = _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)  # first: keys hold digit runs
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), mask_email(text))


def mask_echo(text: str) -> str:
    """Mask the emails and ``+``-prefixed phone numbers in a value an error message quotes back (issue 15: none
    appears raw in an error body). Unlike :func:`mask_text`, other digit runs (dates, amounts, ids) stay."""
    return _E164.sub(lambda m: mask_phone(m.group(0)), mask_email(text))
