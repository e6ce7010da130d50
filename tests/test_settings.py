"""Settings: one object from the environment and the command line; secrets never show themselves."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest

from proxy.settings import Limits, Secret, Settings


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"host": "127.0.0.1", "port": 8080, "policies_dir": Path("policies"), "keys_file": None,
              "state_dir": Path("var"), "log_level": "info", "access_log": False}),
        ({"TESTMODE_PROXY_HOST": "0.0.0.0", "TESTMODE_PROXY_PORT": "9000"}, {"host": "0.0.0.0", "port": 9000}),
        ({"TESTMODE_PROXY_POLICIES": "/etc/policies"}, {"policies_dir": Path("/etc/policies")}),
        ({"TESTMODE_PROXY_KEYS": "/var/keys.json"}, {"keys_file": Path("/var/keys.json")}),
        ({"TESTMODE_PROXY_KEYS": ""}, {"keys_file": None}),
        ({"TESTMODE_PROXY_STATE_DIR": "/tmp/state"}, {"state_dir": Path("/tmp/state")}),
        ({"TESTMODE_PROXY_LOG_LEVEL": "DEBUG"}, {"log_level": "debug"}),
        ({"TESTMODE_PROXY_ACCESS_LOG": "true"}, {"access_log": True}),
        ({"TESTMODE_PROXY_ACCESS_LOG": "1"}, {"access_log": True}),
        ({"TESTMODE_PROXY_ACCESS_LOG": "On"}, {"access_log": True}),
        ({"TESTMODE_PROXY_ACCESS_LOG": "false"}, {"access_log": False}),
        ({"TESTMODE_PROXY_ACCESS_LOG": "0"}, {"access_log": False}),
        ({}, {"trusted_proxies": ()}),
        ({"TESTMODE_PROXY_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,,fd00::/8"},
         {"trusted_proxies": ("10.0.0.0/8", "127.0.0.1", "fd00::/8")}),
        ({"HOST": "10.0.0.1", "testmode_proxy_port": "1"}, {"host": "127.0.0.1", "port": 8080}),
        ({}, {"idempotency_retention": 86_400.0}),
        ({"TESTMODE_PROXY_IDEMPOTENCY_RETENTION": "3600"}, {"idempotency_retention": 3600.0}),
        ({"TESTMODE_PROXY_IDEMPOTENCY_RETENTION": "0.5"}, {"idempotency_retention": 0.5}),
    ],
)
def test_environment_variables(env: dict[str, str], expected: dict[str, Any]) -> None:
    settings = Settings.from_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("env", "upstreams"),
    [
        ({"TESTMODE_PROXY_UPSTREAM_SENT": "http://127.0.0.1:9000"}, {"sent": "http://127.0.0.1:9000"}),
        ({"TESTMODE_PROXY_UPSTREAM_SENDGRID": "http://a", "TESTMODE_PROXY_UPSTREAM_SENT": "http://b"},
         {"sendgrid": "http://a", "sent": "http://b"}),
        ({"TESTMODE_PROXY_UPSTREAM_SENT": ""}, {}),
        # limits that share the UPSTREAM_ prefix are not policies
        ({"TESTMODE_PROXY_UPSTREAM_SENT": "http://b", "TESTMODE_PROXY_UPSTREAM_CONNECT_TIMEOUT": "3",
          "TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT": "20", "TESTMODE_PROXY_UPSTREAM_POOL_SIZE": "8",
          "TESTMODE_PROXY_UPSTREAM_KEEPALIVE_SECONDS": "5", "TESTMODE_PROXY_UPSTREAM_POOL_WAIT": "1",
          "TESTMODE_PROXY_UPSTREAM_MAX_HEADER_BYTES": "1", "TESTMODE_PROXY_UPSTREAM_MAX_HEADERS": "1"},
         {"sent": "http://b"}),
    ],
)
def test_upstream_overrides_by_policy_name(env: dict[str, str], upstreams: dict[str, str]) -> None:
    assert dict(Settings.from_env(env).upstreams) == upstreams


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_BODY_BYTES", "2048", 2048),
        ("MAX_HEADERS", "50", 50),
        ("MAX_JSON_DEPTH", "8", 8),
        ("MAX_IN_FLIGHT", "10", 10),
        ("UPSTREAM_POOL_SIZE", "8", 8),
        ("UPSTREAM_CONNECT_TIMEOUT", "2.5", 2.5),
        ("UPSTREAM_TOTAL_TIMEOUT", "20", 20.0),
        ("UPSTREAM_KEEPALIVE_SECONDS", "1", 1.0),
        ("UPSTREAM_POOL_WAIT", "0.5", 0.5),
        ("UPSTREAM_MAX_HEADER_BYTES", "32768", 32768),
        ("UPSTREAM_MAX_HEADERS", "50", 50),
        ("VERIFY_TIMEOUT", "0.5", 0.5),
        ("BODY_TIMEOUT", "3", 3.0),
        ("VERIFY_CLIENT_PER_MINUTE", "6", 6.0),
        ("VERIFY_CLIENT_BURST", "2", 2),
        ("VERIFY_GLOBAL_PER_MINUTE", "120.5", 120.5),
        ("VERIFY_GLOBAL_BURST", "20", 20),
    ],
)
def test_limits_come_from_the_environment_with_their_types(name: str, value: str, expected: float) -> None:
    limits = Settings.from_env({f"TESTMODE_PROXY_{name}": value}).limits
    got = getattr(limits, name.lower())
    assert got == expected
    assert type(got) is type(getattr(Limits(), name.lower()))
    changed: dict[str, Any] = {name.lower(): expected}
    assert limits == dataclasses.replace(Limits(), **changed)  # nothing else changed


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_retention_that_is_not_a_positive_time_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="IDEMPOTENCY_RETENTION"):
        Settings.from_env({"TESTMODE_PROXY_IDEMPOTENCY_RETENTION": value})


def test_a_limit_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"2\.5"):
        Settings.from_env({"TESTMODE_PROXY_MAX_BODY_BYTES": "2.5"})


def test_a_trusted_proxy_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match=r"TESTMODE_PROXY_TRUSTED_PROXIES: 'proxy\.internal'"):
        Settings.from_env({"TESTMODE_PROXY_TRUSTED_PROXIES": "10.0.0.1, proxy.internal"})


def test_command_line_overrides_win_and_none_means_not_given() -> None:
    env = {"TESTMODE_PROXY_HOST": "0.0.0.0", "TESTMODE_PROXY_PORT": "9000", "TESTMODE_PROXY_KEYS": "/env.json"}
    settings = Settings.from_env(env, host="127.0.0.2", port=None, keys_file=Path("/cli.json"), policies_dir=None)
    assert (settings.host, settings.port, settings.keys_file, settings.policies_dir) == (
        "127.0.0.2", 9000, Path("/cli.json"), Path("policies"),
    )


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTMODE_PROXY_PORT", "9123")
    assert Settings.from_env().port == 9123


def write_secret_dir(root: Path, files: dict[str, str]) -> Path:
    """A Kubernetes secret volume: files in a timestamped dir, ``..data`` and per-key symlinks."""
    root.mkdir()
    stamp = root / "..2024_01_15_10_30_00.000000000"
    stamp.mkdir()
    for name, value in files.items():
        (stamp / name).write_text(value)
    os.symlink(stamp.name, root / "..data")
    for name in files:
        os.symlink(f"..data/{name}", root / name)
    return root


def test_credentials_come_from_a_mounted_secret_directory(tmp_path: Path) -> None:
    root = write_secret_dir(tmp_path / "credentials", {"sent": "sk_live_from_file\n", "SENDGRID": " SG.x \n"})
    (root / ".hidden").write_text("nope")
    settings = Settings.from_env({"TESTMODE_PROXY_CREDENTIALS_DIR": str(root)})
    assert {name: secret.reveal() for name, secret in settings.credentials.items()} == {
        "sent": "sk_live_from_file", "sendgrid": "SG.x",
    }


@pytest.mark.parametrize(
    ("files", "env", "expected"),
    [
        ({"sent": "from_file"}, {"TESTMODE_PROXY_CREDENTIAL_SENT": "from_env"}, {"sent": "from_env"}),
        ({"sent": "from_file"}, {"TESTMODE_PROXY_CREDENTIAL_SENDGRID": "sg"}, {"sent": "from_file", "sendgrid": "sg"}),
        ({"sent": "from_file"}, {"TESTMODE_PROXY_CREDENTIAL_SENT": ""}, {"sent": "from_file"}),
        ({}, {"TESTMODE_PROXY_CREDENTIAL_SENT": "from_env"}, {"sent": "from_env"}),
    ],
)
def test_an_environment_credential_wins_over_the_file(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], expected: dict[str, str]
) -> None:
    root = write_secret_dir(tmp_path / "credentials", files)
    settings = Settings.from_env({"TESTMODE_PROXY_CREDENTIALS_DIR": str(root), **env})
    assert {name: secret.reveal() for name, secret in settings.credentials.items()} == expected


def test_a_missing_credentials_directory_gives_no_credentials(tmp_path: Path) -> None:
    assert dict(Settings.from_env({"TESTMODE_PROXY_CREDENTIALS_DIR": str(tmp_path / "absent")}).credentials) == {}


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret("sk_live_very_secret")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), repr({"k": secret})]
    assert all("sk_live_very_secret" not in text for text in shown)
    assert secret.reveal() == "sk_live_very_secret"
    assert secret == Secret("sk_live_very_secret") and secret != Secret("other") and secret != "sk_live_very_secret"
    assert len({secret, Secret("sk_live_very_secret")}) == 1


def test_settings_repr_hides_credentials() -> None:
    settings = Settings.from_env({"TESTMODE_PROXY_CREDENTIAL_SENT": "sk_live_very_secret"})
    assert "sk_live_very_secret" not in repr(settings)
    assert "sent" in repr(settings)


def test_every_limit_has_a_row_in_the_readmes_configuration_table() -> None:
    """A row names a variable whole (`TESTMODE_PROXY_MAX_HEADER_BYTES`) or as a suffix of the one before it
    (`` / `_MAX_HEADERS` ``: the same leading words, other last ones)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    documented: set[str] = set()
    for row in (line for line in readme.splitlines() if line.startswith("| `TESTMODE_PROXY_")):
        first, *suffixes = re.findall(r"`(TESTMODE_PROXY_[A-Z_<>]+|_[A-Z_]+)`", row.split("|")[1])
        documented.add(first)
        words = first.split("_")
        documented.update("_".join(words[:k]) + suffix for suffix in suffixes for k in range(2, len(words)))
    missing = [f"TESTMODE_PROXY_{name.upper()}" for name in Limits.__dataclass_fields__
               if f"TESTMODE_PROXY_{name.upper()}" not in documented]
    assert missing == []
