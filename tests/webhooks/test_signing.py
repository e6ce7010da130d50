"""Signatures: Standard Webhooks' reference vector, its own library as an oracle, Blueticked's HMAC by hand."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import standardwebhooks

from proxy.webhooks.signing import BUILT_IN, SchemeError, compile_scheme


def test_standard_webhooks_reference_vector() -> None:
    scheme = BUILT_IN["standard_webhooks"]
    headers = scheme.headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                             "message.sent", 1614265330, b'{"test": 2432232314}')
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_a_fresh_secret_verifies_with_the_standardwebhooks_library() -> None:
    import time

    scheme = BUILT_IN["standard_webhooks"]
    secret = scheme.new_secret()
    assert scheme.check_secret(secret) is None
    body = b'{"event":"message.delivered","test":true}'
    headers = scheme.headers(secret, "evt_1", "message.delivered", int(time.time()), body)
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"event": "message.delivered", "test": True}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(scheme.new_secret()).verify(body, headers)


def test_blueticked_signs_the_raw_body_in_lower_case_hex() -> None:
    scheme = BUILT_IN["blueticked"]
    secret = scheme.new_secret()
    body = b'{"event":"message.sent","test":true}'
    headers = scheme.headers(secret, "evt_1", "message.sent", 0, body)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers == {"x-blueticked-event": "message.sent", "x-blueticked-signature": expected}


def test_schemes_are_data_a_policy_can_write_out() -> None:
    custom = compile_scheme({"base": "blueticked", "signature_header": "X-Acme-Signature", "event_header": None})
    assert custom.signature_header == "x-acme-signature"
    assert set(custom.headers("s" * 32, "e", "t", 0, b"{}")) == {"x-acme-signature"}
    assert compile_scheme("blueticked") is BUILT_IN["blueticked"]
    with pytest.raises(SchemeError, match="unknown signing scheme"):
        compile_scheme("md5")
    with pytest.raises(SchemeError, match="unknown field"):
        compile_scheme({"base": "blueticked", "algorithm": "sha1"})
    with pytest.raises(SchemeError, match="encoding"):
        compile_scheme({"base": "blueticked", "encoding": "base32"})


@pytest.mark.parametrize(("scheme", "secret", "problem"), [
    ("standard_webhooks", "whsec_" + "A" * 8, "24 random bytes"),
    ("standard_webhooks", "whsec_not base64!", "printable ASCII"),
    ("standard_webhooks", "whsec_***", "base64"),
    ("blueticked", "short", "24 characters"),
    ("blueticked", "x" * 30, None),
])
def test_user_supplied_secrets_are_checked(scheme: str, secret: str, problem: str | None) -> None:
    found = BUILT_IN[scheme].check_secret(secret)
    assert (found is None) if problem is None else (found is not None and problem in found)
