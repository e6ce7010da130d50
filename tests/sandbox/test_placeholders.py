"""Template placeholders: Meta's rules as Blueticked states them (TP), variables, rendering."""

from __future__ import annotations

import pytest

from proxy.sandbox.placeholders import breaches, parse, render, variable_gaps


@pytest.mark.parametrize(("body", "broken"), [
    ("Hi {{1}}, your statement for {{2}} is ready.", []),
    ("Hi {{1}}, again {{1}}, and {{2}}.", []),  # a variable may be used again
    ("No variables at all.", []),
    ("Hi {{name}}, welcome.", ["syntax"]),
    ("Hi {{0}}, welcome.", ["syntax"]),  # order is judged on the placeholders that parse
    ("Hi {{ 1 }}, welcome.", ["syntax"]),
    ("Hi {{1}, welcome.", ["syntax"]),
    ("Hi {{1}}}} and {{2}}.", ["syntax"]),
    ("Hi {{1}}}, welcome.", []),  # a lone brace is text
    ("Hi {{2}}, welcome.", ["sequential"]),
    ("Hi {{2}} and {{1}}.", ["sequential"]),
    ("Hi {{1}} and {{3}}.", ["sequential"]),
    ("Hi {{1}}{{2}} there.", ["adjacent"]),
    ("Hi {{1}} \n {{2}} there.", ["adjacent"]),
    ("{{1}}, welcome.", ["edges"]),
    ("Welcome, {{1}}", ["edges"]),
    ("  Welcome, {{1}}  ", ["edges"]),
    ("Welcome, {{1}}.", []),  # punctuation after the variable is fine
])
def test_breaches_name_each_rule_broken(body: str, broken: list[str]) -> None:
    assert breaches(body) == broken


def test_parse_keeps_numbers_in_order_of_use() -> None:
    found, sound = parse("Hi {{1}}, {{2}} and {{1}}.")
    assert sound and found.numbers == (1, 2, 1) and found.names == {"1", "2"}


def test_variable_gaps_are_missing_then_unknown_by_number() -> None:
    body = "Hi {{1}}, {{2}} .. {{10}}"
    assert variable_gaps(body, {"1": "a"}) == (["2", "10"], [])
    assert variable_gaps(body, {"1": "a", "2": "b", "10": "c", "3": "x", "name": "y"}) == ([], ["3", "name"])


def test_render_fills_every_use_and_leaves_what_it_lacks() -> None:
    assert render("Hi {{1}}, {{2}}; bye {{1}}.", {"1": "Sam", "2": "May"}) == "Hi Sam, May; bye Sam."
    assert render("Hi {{1}} {{3}}", {"1": "Sam"}) == "Hi Sam {{3}}"
    assert render("Hi {{1}}", {"1": "{{2}}", "2": "x"}) == "Hi {{2}}"  # a value is never rendered again
