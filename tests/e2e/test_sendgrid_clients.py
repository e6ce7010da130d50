"""The official SendGrid clients, pointed at the gateway and changed in nothing else
(shared/reference/provider-clients.md): PyPI ``sendgrid`` and npm ``@sendgrid/mail``.

Sandbox on → 200 and the stand-in provider records nothing; sandbox off, or no mail settings →
the send reaches the provider and its 202 (with ``X-Message-Id``) comes back.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from python_http_client.exceptions import BadRequestsError, UnauthorizedError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]
from sendgrid.helpers.mail import Mail, MailSettings, SandBoxMode  # type: ignore[import-untyped]

from tests.conftest import Keys
from tests.e2e.test_sendgrid import SEED_MESSAGE, SEED_REQUEST
from tests.support.node import install
from tests.support.servers import Gateway, Provider

SEND = "/v3/mail/send"
AUTH_BODY = (b'{"errors":[{"message":"The provided authorization grant is invalid, expired, or revoked",'
             b'"field":null,"help":null}]}')

CASES = [True, False, None]  # sandbox on, sandbox off, no mail settings at all
CASE_IDS = ["sandbox-on", "sandbox-off", "no-mail-settings"]


def _mail_sends(recorder: Provider) -> list[dict[str, Any]]:
    return [r for r in recorder.records() if r["path"].endswith(SEND)]


def _expect(recorder: Provider, sandbox: bool | None, status: int, message_id: str | None) -> None:
    if sandbox:
        assert status == 200
        assert message_id is None
        assert recorder.records() == []
    else:
        assert status == 202
        assert message_id is not None and message_id.startswith("standin-")
        [sent] = _mail_sends(recorder)
        assert sent["method"] == "POST"
        body = json.loads(base64.b64decode(sent["body"]))
        assert body["from"] == {"email": "sender@example.com"}
        if sandbox is False:
            assert body["mail_settings"] == {"sandbox_mode": {"enable": False}}
        else:
            assert "mail_settings" not in body


# ----------------------------------------------------------------------------------------- Python


def _python_mail(sandbox: bool | None, sender: str = "sender@example.com") -> Mail:
    message = Mail(from_email=sender, to_emails="recipient@example.com",
                   subject="Hello from the Python client", plain_text_content="Hello, World!")
    if sandbox is not None:
        message.mail_settings = MailSettings(sandbox_mode=SandBoxMode(sandbox))
    return message


@pytest.mark.parametrize("prefix", ["", "/sendgrid"])
@pytest.mark.parametrize("sandbox", CASES, ids=CASE_IDS)
def test_python_client(gateway: Gateway, keys: Keys, recorder: Provider, sandbox: bool | None, prefix: str) -> None:
    client = SendGridAPIClient(api_key=keys.sendgrid_live, host=gateway.url + prefix)
    response = client.send(_python_mail(sandbox))
    _expect(recorder, sandbox, response.status_code, response.headers.get("X-Message-Id"))
    if sandbox:
        assert response.to_dict == {}


def test_python_client_reads_the_seeds_error(gateway: Gateway, keys: Keys, recorder: Provider) -> None:
    """The client sends a plain dict as is: the seed's invalid request gets the seed's error."""
    client = SendGridAPIClient(api_key=keys.sendgrid_live, host=gateway.url)
    with pytest.raises(BadRequestsError) as caught:
        client.send(SEED_REQUEST)
    assert json.loads(caught.value.body) == {"errors": [{"field": "from", "message": SEED_MESSAGE, "help": None}]}
    assert recorder.records() == []


def test_python_client_reads_a_401(gateway: Gateway, recorder: Provider) -> None:
    client = SendGridAPIClient(api_key="SG.gwlive.revoked", host=gateway.url)
    with pytest.raises(UnauthorizedError) as caught:
        client.send(_python_mail(True))
    assert caught.value.body == AUTH_BODY  # SendGrid's own bytes
    assert recorder.records() == []


@pytest.mark.parametrize("sandbox", [True, False, None], ids=CASE_IDS)
def test_python_client_under_a_test_key(gateway: Gateway, keys: Keys, recorder: Provider,
                                        sandbox: bool | None) -> None:
    """An issued test key: the sandbox flag gets SendGrid's 200, anything else the production 202 (issue 14)."""
    client = SendGridAPIClient(api_key=keys.sendgrid_test, host=gateway.url)
    response = client.send(_python_mail(sandbox))
    if sandbox:
        assert (response.status_code, response.body) == (200, b"{}")
    else:
        assert (response.status_code, response.body) == (202, b"")
        assert response.headers["X-Message-Id"]
    assert recorder.records() == []


# ----------------------------------------------------------------------------------------- Node


@pytest.fixture(scope="session")
def node_client() -> Path:
    """tests/node with @sendgrid/mail installed from the committed lockfile (tests/support/node.py)."""
    return install() / "send.js"


def _node_send(script: Path, base_url: str, key: str, sandbox: bool | None,
               msg: dict[str, Any] | None = None) -> dict[str, Any]:
    args = json.dumps({"baseUrl": base_url, "apiKey": key, "sandbox": sandbox, "msg": msg})
    result = subprocess.run(["node", str(script), args], cwd=script.parent, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


@pytest.mark.parametrize("prefix", ["/", "/sendgrid/"])
@pytest.mark.parametrize("sandbox", CASES, ids=CASE_IDS)
def test_node_client(node_client: Path, gateway: Gateway, keys: Keys, recorder: Provider, sandbox: bool | None,
                     prefix: str) -> None:
    result = _node_send(node_client, gateway.url + prefix, keys.sendgrid_live, sandbox)
    _expect(recorder, sandbox, result["status"], result["headers"].get("x-message-id"))
    if sandbox:
        assert result["body"] == {}


def test_node_client_reads_a_401(node_client: Path, gateway: Gateway, recorder: Provider) -> None:
    result = _node_send(node_client, gateway.url + "/", "SG.gwlive.revoked", True)
    assert result["status"] == 401
    assert result["body"] == json.loads(AUTH_BODY)
    assert result["headers"]["content-length"] == str(len(AUTH_BODY))
    assert recorder.records() == []


def test_node_client_reads_the_seeds_error(node_client: Path, gateway: Gateway, keys: Keys,
                                           recorder: Provider) -> None:
    """The seed's invalid request as the Node client builds it: the from error, with `help`, and nothing sent."""
    seed = {"to": "john@example.com", "subject": "Hello, World!", "from": {"email": "John Doe"},
            "content": [{"type": "text", "value": "Hello, World!"}]}
    result = _node_send(node_client, gateway.url + "/", keys.sendgrid_live, True, msg=seed)
    assert result["status"] == 400
    assert result["body"] == {"errors": [{"message": SEED_MESSAGE, "field": "from", "help": None}]}
    assert recorder.records() == []


@pytest.mark.parametrize("sandbox", [True, False, None], ids=CASE_IDS)
def test_node_client_under_a_test_key(node_client: Path, gateway: Gateway, keys: Keys, recorder: Provider,
                                      sandbox: bool | None) -> None:
    result = _node_send(node_client, gateway.url + "/", keys.sendgrid_test, sandbox)
    if sandbox:
        assert (result["status"], result["body"]) == (200, {})
    else:
        assert (result["status"], result["body"]) == (202, "")
        assert result["headers"]["x-message-id"]
    assert recorder.records() == []
