"""``testmode-proxy keys create|list|revoke``: a key is shown once; the registry holds only its digest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from proxy.cli import main
from proxy.keys.registry import KeyRegistry

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TESTMODE_PROXY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "keys.json"


def create(keys_file: Path, *extra: str, mode: str = "test", policy: str = "sent") -> int:
    return main(["keys", "--file", str(keys_file), "create", "--policy", policy, "--mode", mode,
                 "--policies", str(POLICIES), *extra])


def stored(keys_file: Path) -> list[dict[str, Any]]:
    doc = json.loads(keys_file.read_text())
    assert doc["version"] == (2 if any("workspace" in key for key in doc["keys"]) else 1)  # 1 until needed
    keys: list[dict[str, Any]] = doc["keys"]
    return keys


@pytest.mark.parametrize(("mode", "prefix"), [("test", "sk_test_gw_"), ("live", "sk_live_gw_")])
def test_create_prints_the_key_once_and_stores_only_its_digest(
    keys_file: Path, capsys: pytest.CaptureFixture[str], mode: str, prefix: str
) -> None:
    assert create(keys_file, mode=mode) == 0
    out, err = capsys.readouterr()
    key = out.removesuffix("\n")
    assert out == key + "\n" and "\n" not in key
    assert key.startswith(prefix) and len(key) > len(prefix) + 30
    assert key not in err and "only time the key is shown" in err
    [entry] = stored(keys_file)
    assert entry["digest"] == hashlib.sha256(key.encode()).hexdigest()
    assert (entry["policy"], entry["mode"], entry["scopes"]) == ("sent", mode, ["*"])
    assert str(entry["id"]) in err
    text = keys_file.read_text()
    assert key not in text and key.removeprefix(prefix) not in text
    assert keys_file.stat().st_mode & 0o777 == 0o600
    found = KeyRegistry(keys_file).lookup(key)
    assert found is not None and (found.policy, found.mode) == ("sent", mode)


def test_create_with_scopes_and_a_label(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(keys_file, "--scope", "messages:write", "--scope", "contacts:*", "--label", "ci") == 0
    [entry] = stored(keys_file)
    assert (entry["scopes"], entry["label"]) == (["contacts:*", "messages:write"], "ci")


def test_every_create_adds_a_new_key(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = []
    for _ in range(3):
        assert create(keys_file) == 0
        keys.append(capsys.readouterr().out.strip())
    assert len(set(keys)) == 3
    assert sorted(str(e["digest"]) for e in stored(keys_file)) == sorted(
        hashlib.sha256(k.encode()).hexdigest() for k in keys
    )


def test_an_existing_world_readable_registry_becomes_private(keys_file: Path) -> None:
    keys_file.parent.mkdir()
    keys_file.write_text('{"version": 1, "keys": []}')
    keys_file.chmod(0o644)
    assert create(keys_file) == 0
    assert keys_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nope", "--policies", str(POLICIES)], "no policy named 'nope'"),
        (["--policy", "sent", "--policies", "/nonexistent/policies"], "no policy files"),
    ],
)
def test_create_refuses_an_unknown_policy(
    keys_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["keys", "--file", str(keys_file), "create", "--mode", "test", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert not keys_file.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--policy", "sent", "--mode", "prod"],
        ["keys", "create", "--mode", "test"],
        ["keys", "revoke"],
        ["keys"],
    ],
)
def test_malformed_commands_exit_with_a_usage_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_list_shows_ids_and_never_keys_or_digests(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(keys_file, "--label", "first") == 0
    assert create(keys_file, "--scope", "contacts:write", mode="live") == 0
    created = capsys.readouterr().out.split()
    assert main(["keys", "--file", str(keys_file), "list"]) == 0
    out = capsys.readouterr().out
    rows = sorted(line.split("\t") for line in out.splitlines())
    assert rows == sorted(
        [e["id"], "sent", e["mode"], ",".join(e["scopes"]), e["label"]]
        for e in stored(keys_file)
    )
    assert all(key not in out for key in created)
    assert all(str(e["digest"]) not in out for e in stored(keys_file))


def test_list_of_a_missing_registry_is_empty(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "--file", str(keys_file), "list"]) == 0
    assert capsys.readouterr().out == ""


def test_revoke_removes_the_key(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(keys_file) == 0
    assert create(keys_file) == 0
    revoked_key, kept_key = capsys.readouterr().out.split()
    entries = {str(e["digest"]): str(e["id"]) for e in stored(keys_file)}
    revoked_id = entries[hashlib.sha256(revoked_key.encode()).hexdigest()]
    assert main(["keys", "--file", str(keys_file), "revoke", revoked_id]) == 0
    assert capsys.readouterr().out == f"revoked {revoked_id}\n"
    registry = KeyRegistry(keys_file)
    assert registry.lookup(revoked_key) is None
    assert registry.lookup(kept_key) is not None
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert main(["keys", "--file", str(keys_file), "revoke", revoked_id]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"no key {revoked_id!r}" in err


def test_the_registry_and_policies_come_from_the_environment_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_file = tmp_path / "env-keys.json"
    monkeypatch.setenv("TESTMODE_PROXY_KEYS", str(keys_file))
    monkeypatch.setenv("TESTMODE_PROXY_POLICIES", str(POLICIES))
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "create", "--policy", "sent", "--mode", "test"]) == 0
    key = capsys.readouterr().out.strip()
    assert KeyRegistry(keys_file).lookup(key) is not None
    assert not (tmp_path / "keys.json").exists()


def test_create_binds_a_sandbox_key_to_a_named_workspace(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(keys_file, "--workspace", "team-a") == 0
    out, err = capsys.readouterr()
    assert out.startswith("sk_test_gw_") and "workspace team-a" in err
    assert [k["workspace"] for k in stored(keys_file)] == ["team-a"]
    assert main(["keys", "--file", str(keys_file), "list"]) == 0
    assert capsys.readouterr().out.rstrip("\n").endswith("\tteam-a")


def test_a_live_key_has_no_workspace(keys_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert create(keys_file, "--workspace", "team-a", mode="live") == 2
    assert "only a test (sandbox) key has a workspace" in capsys.readouterr().err
    assert not keys_file.exists()
