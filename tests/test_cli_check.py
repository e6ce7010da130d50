"""``testmode-proxy check`` as CI runs it: exit 0 on the shipped policies, exit 1 with ``file: where: message``
on a broken one (a copy of policies/sent.yaml broken in one way per case).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SENT = ROOT / "policies" / "sent.yaml"
COMMAND = Path(sys.executable).with_name("testmode-proxy")


def check(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [str(COMMAND)] if COMMAND.exists() else [sys.executable, "-m", "proxy.cli"]
    return subprocess.run([*command, "check", *map(str, paths)], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, check=False)


def _replace_once(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        assert text.count(old) >= 1, f"policies/sent.yaml no longer contains {old!r}"
        return text.replace(old, new, 1)
    return apply


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1


# (id, how to break the file, where the error is, what the message says)
BREAKAGES: list[tuple[str, Callable[[str], str], str, str]] = [
    ("unknown-top-level-key", lambda text: text + "\nbogus: 1\n", r"\(top\)", r"'bogus'"),
    ("bad-filter", _replace_once('phone: "{{ body.phone_number }}"', 'phone: "{{ body.phone_number | shout }}"'),
     r"routes\.0\.test_response\.0\.data\.phone", r"unknown filter 'shout'"),
    ("unparsable-expression", _replace_once('phone: "{{ body.phone_number }}"', 'phone: "{{ body. }}"'),
     r"routes\.0\.test_response\.0\.data\.phone", r"cannot parse expression"),
    ("unknown-function", _replace_once('id: "{{ uuid() }}"', 'id: "{{ guid() }}"'),
     r"routes\.0\.test_response\.0\.data\.id", r"guid"),
    ("bad-schema-type", _replace_once("phone_number: {$ref: \"#/$defs/phone\"}\n    test_response:",
                                      "phone_number: {type: strin}\n    test_response:"),
     r"routes\.1\.schema", r"strin"),
    ("bad-schema-ref", _replace_once('phone_number: {$ref: "#/$defs/phone"}\n    test_response:',
                                     'phone_number: {$ref: "#/$defs/no_such"}\n    test_response:'),
     r"routes\.1\.schema", r"no_such|\$ref|resolve"),
    ("unclosed-path-parameter", _replace_once("path: /v3/contacts/{id}\n", "path: /v3/contacts/{id\n"),
     r"routes\.2\.path", r"bad segment"),
    ("repeated-path-parameter", _replace_once("path: /v3/templates/{id}\n", "path: /v3/templates/{id}/{id}\n"),
     r"routes\.\d+\.path", r"\{id\} appears twice"),
    ("relative-path", _replace_once("path: /v3/contacts\n", "path: v3/contacts\n"),
     r"routes\.1\.path", r"'\^/'|must start with"),
    ("unknown-route-key", _replace_once("    scope: contacts:write\n", "    scope: contacts:write\n    scopes: [x]\n"),
     r"routes\.1", r"scopes"),
    ("unknown-error-code", _replace_once("    unauthorized: AUTH_001\n", "    unauthorised: AUTH_001\n"),
     r"dialect\.codes\.unauthorised", r"unknown error code"),
]


@pytest.mark.parametrize(("breakage", "where", "message"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES])
def test_broken_policy_is_rejected_with_file_keypath_and_message(
    tmp_path: Path, breakage: Callable[[str], str], where: str, message: str
) -> None:
    broken = tmp_path / "sent.yaml"
    broken.write_text(breakage(SENT.read_text()))
    result = check(broken)
    assert result.returncode == 1, result
    [line] = result.stderr.strip().splitlines()
    shape = re.fullmatch(rf"{re.escape(str(broken))}: (?P<where>[^:\s]+|line \d+): (?P<message>.+)", line)
    assert shape, line
    assert re.fullmatch(where, shape["where"]), line
    assert re.search(message, shape["message"]), line


def test_duplicate_yaml_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    text = _replace_once("    scope: contacts:write\n", "    scope: contacts:write\n    scope: contacts:read\n")(
        SENT.read_text())
    broken = tmp_path / "sent.yaml"
    broken.write_text(text)
    result = check(broken)
    assert result.returncode == 1
    line = _line_of(text, "    scope: contacts:read\n")
    assert result.stderr.strip() == f"{broken}: line {line}: duplicate key 'scope'"


def test_one_broken_file_fails_the_directory(tmp_path: Path) -> None:
    for policy in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(policy, tmp_path / policy.name)
    (tmp_path / "sent.yaml").write_text(SENT.read_text() + "\nbogus: 1\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'sent.yaml'}: " in result.stderr


def test_shipped_policies_pass() -> None:
    result = check(ROOT / "policies")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.search(r"policies/sent\.yaml: ok \(sent: \d+ routes\)", result.stdout), result.stdout
