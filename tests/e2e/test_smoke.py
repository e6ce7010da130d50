"""The README's curl example, as a test: a test-mode send answers 201 and reaches nobody."""

from __future__ import annotations

import httpx

from tests.conftest import Keys
from tests.support.servers import Gateway, Provider


def test_readme_example_answers_in_test_mode_and_forwards_nothing(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    response = httpx.post(
        gateway.url + "/v3/messages",
        headers={"x-api-key": keys.sent_live},
        json={"test_mode": True, "phone_number": "+1234567890", "template_id": "welcome-template",
              "variables": {"customer_name": "Test User"}},
    )
    assert response.status_code == 201
    assert response.headers["x-test-mode"] == "true"
    assert response.json()["meta"]["request_id"] == response.headers["x-request-id"]
    assert recorder.records() == []
