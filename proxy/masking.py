"""Personal data in logs: phone numbers and emails are masked, never written whole (OWASP logging)."""

from __future__ import annotations

import re

_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


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
    """Mask every phone-number-like and email-like run inside free text (paths, error messages)."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), mask_email(text))
