"""Personal data in logs: phone numbers and email addresses are masked, never written whole."""

from __future__ import annotations

import pytest

from proxy.masking import mask_echo, mask_email, mask_phone, mask_text


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+15555550100", "+1******0100"),
        ("+442071838750", "+4*******8750"),
        ("15555550100", "1******0100"),
        ("+1 (555) 555-0100", "+1******0100"),
        ("555-0100", "5**0100"),
        ("+123456", "*******"),
        ("12345", "*****"),
        ("", ""),
    ],
)
def test_mask_phone_keeps_a_country_hint_and_the_last_four_digits(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("first.last+tag@mail.example.co.uk", "f***@mail.example.co.uk"),
        ("write to bob@example.org or carol@example.net", "write to b***@example.org or c***@example.net"),
        ("no address here", "no address here"),
    ],
)
def test_mask_email_keeps_the_first_letter_and_the_domain(address: str, masked: str) -> None:
    assert mask_email(address) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("/v3/contacts/+15555550100", "/v3/contacts/+1******0100"),
        ("/v3/contacts/15555550100/messages", "/v3/contacts/1******0100/messages"),
        ("/v3/users/alice@example.com", "/v3/users/a***@example.com"),
        ("/v3/lookup/+15555550100/alice@example.com", "/v3/lookup/+1******0100/a***@example.com"),
        ("to +1 555 555 0100 and +44 20 7183 8750", "to +1******0100 and +4*******8750"),
        # keys and secrets lose all but their kind
        ("/v3/keys/sk_live_gw_Ab12345678901234567890", "/v3/keys/sk_live_***"),
        ("/v3/x/sk_test_abcdef/y?k=SG.abc.def123", "/v3/x/sk_test_***/y?k=SG.***"),
        ("/hooks/whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "/hooks/whsec_***"),
        # paths without personal data are untouched
        ("/v3/messages", "/v3/messages"),
        ("/v3/contacts/c_42", "/v3/contacts/c_42"),
        ("/v3/templates/welcome-template", "/v3/templates/welcome-template"),
        ("/v3/profiles/p1/campaigns/c2", "/v3/profiles/p1/campaigns/c2"),
    ],
)
def test_mask_text_masks_every_phone_and_email_in_a_path(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "secret",
    ["+15555550100", "15555550100", "alice@example.com", "+1 (555) 555-0100", "+442071838750"],
)
def test_the_whole_value_never_survives_masking(secret: str) -> None:
    assert secret not in mask_text(f"/v3/contacts/{secret}?x=1")


@pytest.mark.parametrize(
    ("quoted", "masked"),
    [
        ("To@Example.com", "T***@Example.com"),
        ("+15555550100", "+1******0100"),
        ("call +1 (555) 555-0100 or bob@x.io", "call +1******0100 or b***@x.io"),
        ("2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z"),  # a date an error quotes back stays readable
        ("1705314600", "1705314600"),
        ("inline", "inline"),
    ],
)
def test_mask_echo_masks_emails_and_phone_numbers_in_quoted_values_only(quoted: str, masked: str) -> None:
    assert mask_echo(quoted) == masked
