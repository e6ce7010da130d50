"""Keys on a test flag's path, given once and spelled exactly (proxy/flagkeys.py): the findings, and the
cheap byte test that lets clean bodies skip the second parse — which must never clear a body the
second parse would refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import flagkeys
from proxy.policy.flagnames import LOOK_ALIKES, compile_flag_paths, fold
from proxy.policy.model import FlagPaths

SENT = compile_flag_paths([("test_mode",), ("sandbox",)])
SENDGRID = compile_flag_paths([("mail_settings", "sandbox_mode", "enable")])


@pytest.mark.parametrize(
    ("paths", "raw", "field"),
    [
        (SENT, b'{"test_mode": false, "test_mode": true}', "test_mode"),
        (SENT, b'{"test_mode": false, "t\\u0065st_mode": true}', "test_mode"),
        (SENT, b'{"Test_Mode": true}', "Test_Mode"),
        (SENT, b'{"SANDBOX": true}', "SANDBOX"),
        (SENT, b'{"test-mode": true}', "test-mode"),
        (SENT, b'{"test_mode": false, "TEST_MODE": true}', "TEST_MODE"),
        (SENT, '{"\u017fandbox": true}'.encode(), "\u017fandbox"),
        (SENT, b'{"\\u017fandbox": true}', "\u017fandbox"),
        (SENDGRID, b'{"mail_settings": {"sandbox_mode": {"enable": true}}, "to": 1, "mail_settings": {}}',
         "mail_settings"),
        (SENDGRID, b'{"mail_settings": {"sandbox_mode": {"enable": true}, "sandbox_mode": {}}}',
         "mail_settings.sandbox_mode"),
        (SENDGRID, b'{"mail_settings": {"sandbox_mode": {"enable": false, "enable": true}}}',
         "mail_settings.sandbox_mode.enable"),
        (SENDGRID, b'{"Mail_Settings": {"sandbox_mode": {"enable": true}}}', "Mail_Settings"),
        (SENDGRID, b'{"mail_settings": {"Sandbox-Mode": {"enable": true}}}', "mail_settings.Sandbox-Mode"),
        (SENDGRID, b'{"mail_settings": {"sandbox_mode": {"ENABLE": true}}}', "mail_settings.sandbox_mode.ENABLE"),
        (SENDGRID, '{"ma\u0131l_settings": {"sandbox_mode": {"enable": true}}}'.encode(), "ma\u0131l_settings"),
    ],
)
def test_refused(paths: FlagPaths, raw: bytes, field: str) -> None:
    finding = flagkeys.check(raw, paths)
    assert finding is not None
    assert finding.field == field


@pytest.mark.parametrize(
    ("paths", "raw"),
    [
        (SENT, b'{"test_mode": true, "to": ["+15555550100"]}'),
        (SENT, b'{"a": 1, "a": 2, "test_mode": false}'),  # a repeated key elsewhere is the provider's to judge
        (SENT, b'{"variables": {"sandbox": 1, "sandbox": 2, "Test_Mode": 3}}'),  # not on a trigger's path
        (SENT, b'{"text": "Sandbox", "test_mode": true}'),  # a value, not a key
        (SENT, '{"text": "\u017f", "sandbox": true}'.encode()),
        (SENDGRID, b'{"mail_settings": {"sandbox_mode": {"enable": true}}, '
                   b'"tracking_settings": {"click_tracking": {"enable": true, "Enable": false}}}'),
        (SENDGRID, b'{"mail_settings": {"footer": {"enable": true}, "sandbox_mode": {"enable": false}}}'),
        (SENDGRID, b'{"subject": "hi"}'),
    ],
)
def test_cleared(paths: FlagPaths, raw: bytes) -> None:
    assert flagkeys.check(raw, paths) is None


def test_a_body_only_the_second_parser_refuses_cannot_be_checked() -> None:
    with pytest.raises(Exception, match="could not be checked"):
        flagkeys.ambiguous_key(b'{"test_mode": ' + b"1" * 5000 + b"}", SENT)


# Property: generated bodies whose keys are spellings of the path keys (case, '-', look-alikes, escapes,
# repeats) and other keys, judged against a model that walks the pairs as written.
def _spellings(name: str) -> st.SearchStrategy[str]:
    def respell(flips: list[int]) -> str:
        chars = list(name)
        for i in flips:
            c = chars[i % len(chars)]
            chars[i % len(chars)] = {"_": "-", "-": "_"}.get(c, LOOK_ALIKES.get(c, c.upper()) if i % 3 else c.upper())
        return "".join(chars)

    return st.just(name) | st.lists(st.integers(0, 50), min_size=1, max_size=3).map(respell)


KEYS = st.sampled_from(["mail_settings", "sandbox_mode", "enable", "test_mode", "sandbox"]).flatmap(_spellings) | \
    st.text(st.characters(min_codepoint=0x20, codec="utf-8"), max_size=4)
Pairs = list[tuple[str, Any]]
TREE = st.recursive(
    st.booleans() | st.sampled_from(["Sandbox", "test_mode", "x"]),
    lambda inner: st.lists(st.tuples(KEYS, inner), max_size=4),
    max_leaves=10,
)


def _encode_key(key: str, escape: bool) -> str:
    if not escape:
        return json.dumps(key, ensure_ascii=False)
    return '"' + "".join(f"\\u{ord(c):04x}" if c.isalpha() or c < " " or c in '"\\' else c for c in key) + '"'


def _encode(node: Any, escape: bool) -> str:
    if isinstance(node, list):
        return "{" + ", ".join(f"{_encode_key(k, escape)}: {_encode(v, escape)}" for k, v in node) + "}"
    return json.dumps(node, ensure_ascii=False)


def _model(node: Any, paths: FlagPaths) -> bool:
    """Refused? Each key of an object on a trigger's path: at most one key folding to it, spelled exactly."""
    def walk(pairs: Pairs, keys: tuple[Any, ...]) -> bool:
        for key in keys:
            same = [(k, v) for k, v in pairs if fold(k) == key.folded]
            if len(same) > 1 or any(k != key.name for k, _ in same):
                return True
            if same and isinstance(same[-1][1], list) and walk(same[-1][1], key.below):
                return True
        return False

    return isinstance(node, list) and walk(node, paths.keys)


@settings(max_examples=400, deadline=None)
@given(tree=st.lists(st.tuples(KEYS, TREE), max_size=5), escape=st.booleans(), sendgrid=st.booleans())
def test_the_byte_test_never_clears_a_body_the_second_parse_refuses(tree: Pairs, escape: bool, sendgrid: bool) -> None:
    paths = SENDGRID if sendgrid else SENT
    raw = _encode(tree, escape).encode()
    refused = _model(tree, paths)
    assert (flagkeys.ambiguous_key(raw, paths) is not None) is refused
    assert (flagkeys.check(raw, paths) is not None) is refused
    if refused:
        assert flagkeys.may_be_ambiguous(raw, paths)
