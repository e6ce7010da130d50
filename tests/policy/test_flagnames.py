"""The one folding rule for test flag names (proxy/policy/flagnames.py), and what it compiles to."""

from __future__ import annotations

import sys

import pytest

from proxy.policy.flagnames import (
    FOLD_BYTES,
    LOOK_ALIKES,
    compile_flag_paths,
    derived_misplaced,
    fold,
    header_spellings,
    query_name_is_misplaced,
)


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("test_mode", "test_mode"),
        ("Test_Mode", "test_mode"),
        ("TEST-MODE", "test_mode"),
        ("x_test_mode", "x_test_mode"),
        ("\u017fandbox", "sandbox"),  # long s: Go's simple folding reads it as s
        ("ma\u0131l_settings", "mail_settings"),  # dotless i: .NET's upper-invariant reads it as I
        ("\u212aey", "key"),  # Kelvin sign: Go reads it as k
        ("stra\u00dfe", "stra\u00dfe"),  # ß expands under full case mapping: read as no single letter
        ("\u0130d", "\u0130d"),  # dotted capital I lower-cases to two characters: no single letter either
    ],
)
def test_fold(name: str, folded: str) -> None:
    assert fold(name) == folded


def test_look_alikes_are_every_non_ascii_character_that_folds_to_an_ascii_letter() -> None:
    found = {fold(chr(cp)): chr(cp) for cp in range(0x80, sys.maxunicode + 1)
             if fold(chr(cp)).isascii() and fold(chr(cp)).isalpha()}
    assert found == LOOK_ALIKES


def test_fold_bytes_agrees_with_fold_on_ascii() -> None:
    every = bytes(range(128))
    assert every.translate(FOLD_BYTES).decode() == fold(every.decode())


def test_the_paths_compile_to_one_tree_with_byte_tokens() -> None:
    paths = compile_flag_paths([("mail_settings", "sandbox_mode", "enable"), ("mail_settings", "Footer"), ("sandbox",)])
    assert [k.name for k in paths.keys] == ["mail_settings", "sandbox"]
    settings = paths.keys[0]
    assert [k.name for k in settings.below] == ["sandbox_mode", "Footer"]
    footer = settings.below[1]
    assert (footer.folded, footer.exact, footer.token) == ("footer", b'"Footer"', b'"footer"')
    assert paths.folded == {"mail_settings", "sandbox_mode", "enable", "footer", "sandbox"}
    assert paths.lengths == {13, 12, 6, 7}
    assert paths.look_alikes == ("\u0131".encode(), "\u017f".encode())  # the i of mail_settings, the s of sandbox


def test_keys_of_one_object_that_fold_alike_are_refused() -> None:
    with pytest.raises(ValueError, match="'test_mode', 'Test-Mode' differ only in case"):
        compile_flag_paths([("test_mode",), ("Test-Mode",)])
    compile_flag_paths([("sandbox",), ("settings", "sandbox")])  # different objects: fine


def test_misplaced_names_derive_from_the_triggers_keys() -> None:
    assert derived_misplaced([("test_mode",), ("mail_settings", "sandbox_mode", "enable")]) == [
        "test_mode", "x-test_mode", "enable", "x-enable"]


def test_header_spellings_are_every_separator_choice_lower_cased() -> None:
    assert header_spellings(["X-Test_Mode"]) == {"x-test-mode", "x-test_mode", "x_test-mode", "x_test_mode"}


@pytest.mark.parametrize(
    ("name", "misplaced"),
    [
        ("sandbox", True),
        ("Sandbox", True),
        ("SANDBOX", True),
        ("sandbox[]", True),
        ("Test-Mode", True),
        ("x_test_mode", True),
        ("mail_settings[sandbox][enable]", True),
        ("options.sandbox", True),
        ("\u017fandbox", True),
        ("sandboxes", False),
        ("sandbox_id", False),
        ("page", False),
        ("", False),
    ],
)
def test_query_names_are_matched_folded_and_by_nested_part(name: str, misplaced: bool) -> None:
    assert query_name_is_misplaced(name, frozenset({"sandbox", "test_mode", "x_test_mode"})) is misplaced
