"""``testmode-proxy webhooks add|list|remove``: the same store and the same checks as the API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from proxy.cli import main
from proxy.store.database import Database
from proxy.webhooks.subscriptions import Subscriptions
from tests.support.servers import POLICIES
from tests.webhooks.harness import PUBLIC


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("TESTMODE_PROXY_"):
            monkeypatch.delenv(name)
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{PUBLIC} hooks.example.test\n")
    monkeypatch.setenv("TESTMODE_PROXY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TESTMODE_PROXY_POLICIES", str(POLICIES))
    monkeypatch.setenv("TESTMODE_PROXY_WEBHOOK_HOSTS", str(hosts))
    yield tmp_path / "state"
    structlog.reset_defaults()  # the CLI configured logging for its process; this one goes on


def test_add_prints_the_secret_once_and_list_and_remove_use_the_same_store(
    state: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["webhooks", "add", "--workspace", "sent/key_abc", "--url", "https://hooks.example.test/in",
                 "--event", "message.sent", "--drill", "duplicate=0.5"]) == 0
    out, err = capsys.readouterr()
    created = json.loads(out)
    assert created["secret"].startswith("whsec_") and "shown this once" in err
    assert (created["workspace"], created["policy"], created["events"]) == ("sent/key_abc", "sent", ["message.sent"])
    assert created["drills"]["duplicate"] == 0.5
    db = Database(state / "state.db")
    [stored] = Subscriptions(db).listed("sent/key_abc")
    db.close()
    assert stored.secret.reveal() == created["secret"]
    assert main(["webhooks", "list"]) == 0
    listed = capsys.readouterr().out
    assert created["id"] in listed and created["secret"] not in listed
    assert main(["webhooks", "remove", created["id"]]) == 0
    assert capsys.readouterr().out == f"removed {created['id']}\n"
    assert main(["webhooks", "list", "--workspace", "sent/key_abc"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["webhooks", "remove", created["id"]]) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--workspace", "sent/key_abc", "--url", "http://169.254.169.254/latest"], "not a public address"),
    (["--workspace", "sent/key_abc", "--url", "http://2130706433/"], "dotted-quad"),
    (["--workspace", "sent/key_abc", "--url", "file:///etc/passwd"], "http://"),
    (["--workspace", "nopolicy/key_abc", "--url", "https://hooks.example.test/"], "no policy named"),
    (["--workspace", "key_abc", "--url", "https://hooks.example.test/"], "<policy>/<key id>"),
    (["--workspace", "sent/key_abc", "--url", "https://hooks.example.test/", "--drill", "chaos=1"], "Unknown drill"),
])
def test_what_the_api_refuses_the_cli_refuses(
    state: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    assert main(["webhooks", "add", *argv]) == 2
    assert message in capsys.readouterr().err
