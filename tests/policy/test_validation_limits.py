"""Bounded validation (security issue, item 2): at most 100 findings, then a note; each pass within a
step budget; nothing rendered in full from a large value. Ordinary bodies are listed as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.errors import FieldError
from proxy.policy.findings import TRUNCATED
from proxy.policy.loader import load_policy
from proxy.policy.rules import compile_rule, value_text
from proxy.policy.validation import (
    INVALID,
    MAX_FINDINGS,
    TOO_LARGE,
    BodyValidator,
    bracket_path,
    compile_validator,
    dot_path,
)

NOTE = FieldError(None, TRUNCATED)
PHONE = {"type": "string", "format": "e164", "x-message": "{field} must be a valid phone number"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "to": {"type": "array", "maxItems": 1000, "items": PHONE},
        "text": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object", "additionalProperties": False},
    },
}


def validator(schema: Any = SCHEMA, rules: tuple[Any, ...] = (), **limits: int) -> BodyValidator:
    compiled = compile_validator(schema, {}, rules, bracket_path)
    return BodyValidator(compiled.fast, compiled.slow, compiled.rules, compiled.field_style, **limits)


def test_the_issues_body_gets_one_finding_for_the_array_length() -> None:
    # 60,000 wrong-typed items in an array that allows 1000: its length is the finding, its items unwalked.
    findings = validator().check({"to": [1] * 60_000, "text": "hi"})
    assert findings == [FieldError("to", "to must have at most 1000 items")]


def test_findings_stop_at_the_limit_with_a_note_and_read_in_order() -> None:
    findings = validator().check({"to": [1] * 1000})
    assert len(findings) == MAX_FINDINGS + 1 and findings[-1] == NOTE
    assert [f.field for f in findings[:-1]] == [f"to[{i}]" for i in range(MAX_FINDINGS)]


def test_exactly_the_limit_is_not_cut() -> None:
    findings = validator().check({"to": [1] * MAX_FINDINGS})
    assert len(findings) == MAX_FINDINGS and NOTE not in findings


def test_the_findings_kept_are_listed_in_reading_order_whatever_order_they_were_found_in() -> None:
    # `text` (a scalar) is examined before `to`; `tags` before `to` in reading order only.
    findings = validator(max_findings=3).check({"to": [1, 2], "text": 5, "tags": [7]})
    assert [f.field for f in findings] == ["tags[0]", "text", "to[0]", None]


def test_an_unbounded_array_is_walked_only_until_the_budget_runs_out() -> None:
    # 60,000 strings with a mistake at the end, and a mistake in a short field: the short one is found first.
    tags = ["x"] * 60_000 + [5]
    assert validator().check({"tags": tags, "text": 5}) == [FieldError("text", "text must be a string"), NOTE]
    assert validator().check({"tags": tags}) == [FieldError(None, INVALID), NOTE]
    last = FieldError("tags[60000]", "tags[60000] must be a string")
    assert validator(max_steps=10**6).check({"tags": tags}) == [last]


def test_unknown_keys_are_listed_up_to_the_limit_in_body_order_and_long_ones_cut() -> None:
    meta = {f"k{i:05}": 1 for i in range(50_000)}
    findings = validator().check({"meta": meta})
    assert [f.field for f in findings[:3]] == ["meta.k00000", "meta.k00001", "meta.k00002"]
    assert len(findings) == MAX_FINDINGS + 1 and findings[-1] == NOTE
    [finding] = validator().check({"meta": {"k" * 5000: 1}})
    assert finding.field == "meta." + "k" * 197 + "..." and len(finding.message) < 300


@pytest.mark.parametrize(("parts", "bracket", "dot"), [
    (["a" * 200], "a" * 200, "a" * 200),
    (["x", "a" * 201, 3], "x." + "a" * 197 + "...[3]", "x." + "a" * 197 + "....3"),
])
def test_field_names_cut_keys_longer_than_any_declared_field(parts: list[str | int], bracket: str, dot: str) -> None:
    assert (bracket_path(parts), dot_path(parts)) == (bracket, dot)


# ---------------------------------------------------------------------------------------- rules


def duplicates() -> Any:
    return compile_rule({"rule": "unique_across", "paths": ["tags.*"], "message": "{value} again", "field": "tags"})


def test_rule_findings_count_toward_the_limit_and_stop_the_rule() -> None:
    calls = []

    def counting(body: Any) -> Any:
        for i in range(10**6):
            calls.append(i)
            yield FieldError(f"f{i}", "bad")

    findings = validator(rules=(counting,)).check({"to": [1] * 30})
    assert len(findings) == MAX_FINDINGS + 1 and findings[-1] == NOTE
    assert findings[29] == FieldError("to[29]", "to[29] must be a valid phone number")
    assert len(calls) == MAX_FINDINGS - 30 + 1  # one more than it could list, then no more asked


def test_identical_findings_are_listed_once_whoever_finds_them() -> None:
    repeated = validator(rules=(duplicates(),)).check({"tags": ["a"] * 5})
    assert repeated == [FieldError("tags", "a again")]


def test_rules_that_cannot_finish_within_their_budget_do_not_pass_the_body() -> None:
    rule = compile_rule({"rule": "max_total", "paths": ["tags.*"], "max": 10**9, "message": "too many"})
    assert validator(rules=(rule,), max_rule_steps=1000).check({"tags": ["a"] * 5000}) == [FieldError(None, TOO_LARGE)]
    assert validator(rules=(rule,)).check({"tags": ["a"] * 5000}) == []
    assert validator(rules=(rule,), max_rule_steps=1000).check({"tags": ["a"] * 5000, "text": 1}) == [
        FieldError("text", "text must be a string"), NOTE]


def test_a_total_is_counted_only_as_far_as_its_limit_unless_the_wording_shows_it() -> None:
    quiet = compile_rule({"rule": "max_total", "paths": ["tags.*"], "max": 10, "message": "too many"})
    counted = compile_rule({"rule": "max_total", "paths": ["tags.*"], "max": 10, "message": "{count} > {max}"})
    body = {"tags": ["a"] * 20_000}
    assert validator(rules=(quiet,), max_rule_steps=100).check(body) == [FieldError("tags", "too many")]
    assert validator(rules=(counted,)).check(body) == [FieldError("tags", "20000 > 10")]


# ---------------------------------------------------------------------------------------- wording


@pytest.mark.parametrize("value", [
    [1, "x"], {"a": [1, {"b": None}], "c": "d"}, "é" * 10, list(range(100)), {"k": "v" * 500}, [[["x" * 300]]],
    [{"a": i, "b": [True, 1.5]} for i in range(40)],
])
def test_value_text_is_the_start_of_the_values_json(value: Any) -> None:
    full = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = value_text(value)
    assert text == (full if len(full) <= 200 else full[:197] + "...")


def test_value_text_of_a_huge_value_renders_only_its_start() -> None:
    huge = [{"k": "v" * 1000}] * 100_000  # 100 MB of JSON if rendered
    assert value_text(huge) == orjson.dumps(huge[:1]).decode()[:197] + "..."


def test_sendgrids_documented_bounds_are_one_finding_each_however_far_exceeded() -> None:
    policy = load_policy(Path(__file__).resolve().parents[2] / "policies" / "sendgrid.yaml")
    match = policy.match("POST", "/v3/mail/send")
    assert match is not None
    body = {"personalizations": [{"to": [{"email": f"r{i}@example.com"} for i in range(1001)]}],
            "from": {"email": "from@example.com"}, "subject": "s", "content": [{"type": "text/plain", "value": "x"}]}
    limit = FieldError("personalizations", "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                       "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#-Personalizations-Errors")
    assert match[0].validator.check(body) == [limit]  # the array's bound and the total rule agree
    body["personalizations"][0]["to"] = [7] * 60_000  # the rules stop within their budget: the list may be longer
    assert match[0].validator.check(body) == [limit, NOTE]
    body["personalizations"][0]["to"] = [{"email": "to@example.com"}]
    body["custom_args"] = {f"k{i}": i for i in range(10_001)}  # 10,001 wrong values: refused for the count
    assert match[0].validator.check(body) == [FieldError(
        "custom_args", "The combined size of both global and personalization custom arguments may not exceed 10,000 "
        "bytes per personalization.", "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
        "#message.custom_args")]
