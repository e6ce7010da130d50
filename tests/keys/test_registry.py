"""The issued-key registry: lookup by digest, live reload, last good snapshot, revoke."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog

from proxy.keys.registry import (
    IssuedKey,
    KeyRegistry,
    RegistryError,
    create_key,
    list_keys,
    parse_registry,
    revoke_key,
    write_registry,
)


def touch_later(path: Path, step: int) -> None:
    """Give the file a distinct mtime whatever the filesystem's timestamp granularity."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + step * 1_000_000_000))


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


def test_a_created_key_is_found_by_its_digest_under_its_policy(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["messages:write"], "sk_test_gw_", "ci")
    registry = KeyRegistry(keys_file, reload_interval=0)
    found = registry.lookup(raw)
    assert found == entry
    assert (found.policy, found.mode, found.label) == ("sent", "test", "ci")
    assert found.scopes == frozenset({"messages:write"})
    assert found.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert len(registry) == 1


@pytest.mark.parametrize(
    "transform",
    [
        lambda raw: raw + "x",
        lambda raw: raw[:-1],
        lambda raw: raw.upper(),
        lambda raw: " " + raw,
        lambda raw: "",
        lambda raw: hashlib.sha256(raw.encode()).hexdigest(),  # the digest is not a key
    ],
)
def test_anything_but_the_key_itself_is_unknown(keys_file: Path, transform: Any) -> None:
    raw, _ = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    assert registry.lookup(transform(raw)) is None


def test_each_entry_names_its_policy_so_the_caller_can_refuse_a_foreign_key(keys_file: Path) -> None:
    sent, _ = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    sendgrid, _ = create_key(keys_file, "sendgrid", "live", ["*"], "SG.gw.")
    registry = KeyRegistry(keys_file, reload_interval=0)
    found = [registry.lookup(raw) for raw in (sent, sendgrid)]
    assert [entry.policy if entry else None for entry in found] == ["sent", "sendgrid"]


def test_digests_are_compared_in_constant_time(keys_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, entry = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("proxy.keys.registry.hmac.compare_digest", spy)
    assert registry.lookup(raw) == entry
    assert compared == [(entry.digest, entry.digest)]


def test_a_registry_without_a_file_knows_no_keys(tmp_path: Path) -> None:
    assert len(KeyRegistry(None)) == 0
    assert KeyRegistry(None).lookup("sk_live_gw_x") is None
    assert KeyRegistry(tmp_path / "absent.json").lookup("sk_live_gw_x") is None


def test_keys_created_after_start_are_picked_up_when_the_file_changes(keys_file: Path) -> None:
    registry = KeyRegistry(keys_file, reload_interval=0)  # no file yet
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    assert registry.lookup(raw) == entry
    second, second_entry = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    touch_later(keys_file, 1)
    assert registry.lookup(second) == second_entry
    assert registry.lookup(raw) == entry
    assert len(registry) == 2


def test_a_revoked_key_stops_working_without_a_restart(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    kept, kept_entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    assert registry.lookup(raw) == entry
    assert revoke_key(keys_file, entry.id) is True
    touch_later(keys_file, 1)
    assert registry.lookup(raw) is None
    assert registry.lookup(kept) == kept_entry
    assert revoke_key(keys_file, entry.id) is False
    assert [k.id for k in list_keys(keys_file)] == [kept_entry.id]


def test_the_file_is_not_reread_before_the_reload_interval(keys_file: Path) -> None:
    raw, _ = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=3600)
    assert registry.lookup(raw) is not None
    later, _ = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    touch_later(keys_file, 1)
    assert registry.lookup(later) is None


@pytest.mark.parametrize(
    "corrupt",
    [
        "{not json",
        '{"version": 1, "keys": [',
        '{"version": 3, "keys": []}',
        '{"version": 1}',
        '{"version": 1, "keys": [{"id": "k"}]}',
        '{"version": 1, "keys": [{"id": "k", "policy": "sent", "mode": "prod", "scopes": [], "digest": "' + "a" * 64
        + '"}]}',
        '{"version": 1, "keys": [{"id": "k", "policy": "sent", "mode": "test", "scopes": [], "digest": "abc"}]}',
    ],
)
def test_a_corrupt_file_on_reload_keeps_the_last_good_snapshot(keys_file: Path, corrupt: str) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    keys_file.write_text(corrupt)
    touch_later(keys_file, 1)
    assert registry.lookup(raw) == entry
    # once the file is good again, it is read again
    write_registry(keys_file, [])
    touch_later(keys_file, 2)
    assert registry.lookup(raw) is None


def test_an_empty_file_holds_no_keys(keys_file: Path) -> None:
    keys_file.write_text("")
    assert len(KeyRegistry(keys_file)) == 0
    assert list_keys(keys_file) == []


def test_a_corrupt_file_at_start_is_an_error(keys_file: Path) -> None:
    keys_file.write_text("{not json")
    with pytest.raises(RegistryError, match=f"^{keys_file}: not JSON"):
        KeyRegistry(keys_file)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def test_a_deleted_file_revokes_every_key_until_it_comes_back(keys_file: Path) -> None:
    """Deleting the file is an operator revoking everything (security issue #10, item 10): never silent."""
    raw, entry = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    saved = keys_file.read_bytes()
    registry = KeyRegistry(keys_file, reload_interval=0)
    assert registry.lookup(raw) == entry
    with structlog.testing.capture_logs() as logs:
        keys_file.unlink()
        assert [registry.lookup(raw) for _ in range(3)] == [None, None, None]
        assert len(registry) == 0
    [missing] = events(logs, "key_registry_missing")  # once per disappearance, not once per check
    assert missing["log_level"] == "error"
    assert (missing["path"], missing["keys_dropped"]) == (str(keys_file), 1)

    with structlog.testing.capture_logs() as logs:
        keys_file.write_bytes(saved)
        assert registry.lookup(raw) == entry
    assert [e["keys"] for e in events(logs, "key_registry_reloaded")] == [1]

    with structlog.testing.capture_logs() as logs:
        keys_file.unlink()
        assert registry.lookup(raw) is None
    assert len(events(logs, "key_registry_missing")) == 1  # a second disappearance is logged again


def test_a_dangling_symlink_is_a_missing_file(tmp_path: Path) -> None:
    """A Kubernetes Secret mount is a symlink into ``..data``; a link whose target is gone holds no keys."""
    target = tmp_path / "data" / "keys.json"
    target.parent.mkdir()
    raw, _ = create_key(target, "sent", "test", ["*"], "sk_test_gw_")
    link = tmp_path / "keys.json"
    link.symlink_to(target)
    registry = KeyRegistry(link, reload_interval=0)
    assert registry.lookup(raw) is not None
    target.unlink()
    assert registry.lookup(raw) is None


def test_a_file_missing_at_start_is_an_empty_registry_logged_as_an_error(keys_file: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        registry = KeyRegistry(keys_file, reload_interval=0)
        assert registry.lookup("sk_live_gw_x") is None
    [missing] = events(logs, "key_registry_missing")
    assert (missing["log_level"], missing["keys_dropped"]) == ("error", 0)
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    assert registry.lookup(raw) == entry


def test_a_failed_reload_is_logged_once_per_version_of_the_file(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    with structlog.testing.capture_logs() as logs:
        keys_file.write_text("{not json")
        touch_later(keys_file, 1)
        assert [registry.lookup(raw) for _ in range(3)] == [entry] * 3
        keys_file.write_text('{"version": 7}')
        touch_later(keys_file, 2)
        assert registry.lookup(raw) == entry
    failures = events(logs, "key_registry_reload_failed")
    assert [(f["log_level"], f["keys_kept"]) for f in failures] == [("error", 1), ("error", 1)]
    assert "not JSON" in failures[0]["error"] and "expected" in failures[1]["error"]


@pytest.mark.parametrize("damage", ["binary", "directory"])
def test_an_unreadable_file_keeps_the_last_good_snapshot(keys_file: Path, damage: str) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    keys_file.unlink()  # replaced before the next check, so the registry never sees it missing
    if damage == "binary":
        keys_file.write_bytes(b"\xff\xfe\x00garbage")  # not UTF-8
    else:
        keys_file.mkdir()  # reading fails (root ignores file modes, so no chmod case here)
    with structlog.testing.capture_logs() as logs:
        assert [registry.lookup(raw) for _ in range(2)] == [entry, entry]
    [failure] = events(logs, "key_registry_reload_failed")
    assert failure["log_level"] == "error"


def test_a_rewrite_within_one_timestamp_tick_is_seen(keys_file: Path) -> None:
    """Same size, same mtime, a new inode: an atomic replace is a new version even on a coarse clock."""
    raw, entry = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    registry = KeyRegistry(keys_file, reload_interval=0)
    assert registry.lookup(raw) == entry
    before = keys_file.stat()
    write_registry(keys_file, [replace(entry, digest="0" * 64)])  # the key revoked, the file the same size
    os.utime(keys_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert keys_file.stat().st_size == before.st_size
    assert registry.lookup(raw) is None


def test_the_file_is_checked_again_once_the_interval_has_passed(keys_file: Path) -> None:
    clock = FakeClock()
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    registry = KeyRegistry(keys_file, reload_interval=2.0, clock=clock)
    keys_file.unlink()
    clock.now += 1.9
    assert registry.lookup(raw) == entry  # not looked at yet
    clock.now += 0.1
    assert registry.lookup(raw) is None


def test_the_file_holds_digests_only_and_is_private(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "live", ["b", "a"], "sk_live_gw_", "deploy")
    text = keys_file.read_text()
    assert raw not in text
    assert raw.removeprefix("sk_live_gw_") not in text
    doc = json.loads(text)
    assert doc == {"version": 1, "keys": [{
        "id": entry.id, "policy": "sent", "mode": "live", "scopes": ["a", "b"], "digest": entry.digest,
        "label": "deploy", "created_at": entry.created_at,
    }]}
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert not keys_file.with_name("keys.json.tmp").exists()


def test_new_keys_are_random_and_carry_the_prefix(keys_file: Path) -> None:
    made = [create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_") for _ in range(5)]
    raws = {raw for raw, _ in made}
    assert len(raws) == 5 and len({entry.id for _, entry in made}) == 5
    assert all(raw.startswith("sk_test_gw_") and len(raw) == len("sk_test_gw_") + 40 for raw in raws)
    assert all(raw.removeprefix("sk_test_gw_").isalnum() for raw in raws)


def test_uppercase_digests_in_the_file_still_match(keys_file: Path) -> None:
    raw = "sk_live_gw_handmade"
    digest = hashlib.sha256(raw.encode()).hexdigest().upper()
    keys_file.write_text(json.dumps({"version": 1, "keys": [
        {"id": "key_1", "policy": "sent", "mode": "live", "scopes": ["*"], "digest": digest},
    ]}))
    found = KeyRegistry(keys_file).lookup(raw)
    assert found is not None and found.id == "key_1"


def test_identity_carries_the_entry_but_never_shows_the_key(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["contacts:*"], "sk_test_gw_")
    identity = KeyRegistry(keys_file).identity(entry, raw, None)
    assert (identity.key_id, identity.kind, identity.mode) == (entry.id, "issued", "test")
    assert identity.allows("contacts:write") and not identity.allows("messages:write")
    assert raw not in repr(identity)


def test_parse_registry_round_trips(keys_file: Path) -> None:
    entry = IssuedKey("key_1", "sent", "live", frozenset({"*"}), "f" * 64, "l", "2024-01-01T00:00:00Z")
    write_registry(keys_file, [entry])
    assert parse_registry(keys_file.read_text(), "x") == {entry.digest: entry}


def test_a_version_1_file_stays_version_1_until_a_key_has_a_workspace(keys_file: Path) -> None:
    raw, entry = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    assert json.loads(keys_file.read_text())["version"] == 1  # still readable by a gateway without workspaces
    assert KeyRegistry(keys_file).lookup(raw) == entry
    _, shared = create_key(keys_file, "blueticked", "test", ["*"], "blu_test_gw_", workspace="team-a")
    doc = json.loads(keys_file.read_text())
    assert doc["version"] == 2
    assert {item["id"]: item.get("workspace") for item in doc["keys"]} == {entry.id: None, shared.id: "team-a"}
    assert list_keys(keys_file)[1].workspace == "team-a"


@pytest.mark.parametrize(("mode", "workspace"), [("live", "team"), ("test", "no spaces"), ("test", "-dash"),
                                                 ("test", "x" * 65)])
def test_a_workspace_is_a_short_name_on_a_test_key_only(keys_file: Path, mode: str, workspace: str) -> None:
    with pytest.raises(RegistryError):
        create_key(keys_file, "blueticked", mode, ["*"], "blu_test_gw_", workspace=workspace)  # type: ignore[arg-type]
    entry = {"id": "key_1", "policy": "blueticked", "mode": mode, "scopes": ["*"], "digest": "a" * 64,
             "workspace": workspace}
    with pytest.raises(RegistryError):
        parse_registry(json.dumps({"version": 2, "keys": [entry]}), "keys.json")
