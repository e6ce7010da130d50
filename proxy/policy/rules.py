"""Validation rules JSON Schema cannot express, named in a route's ``rules:`` list.

A rule is general (it knows nothing of any one provider): the policy names it and gives it
parameters and wording. Each factory takes the rule's options (already checked at load) and
returns a check of the parsed body that yields every finding at once.

To add a rule: write ``def _my_rule(options: RuleOptions) -> RuleCheck`` and register it in
``RULES``; raise :class:`RuleConfigError` from the factory for bad options so policy load fails
with the key path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.errors import FieldError

RuleCheck = Callable[[Any], list[FieldError]]
RuleOptions = dict[str, Any]
RuleFactory = Callable[[RuleOptions], RuleCheck]


class RuleConfigError(ValueError):
    """A rule's options are wrong; the loader prefixes the file and key path."""


RULES: dict[str, RuleFactory] = {}


def compile_rule(options: RuleOptions) -> RuleCheck:
    name = options.get("rule")
    if not isinstance(name, str) or name not in RULES:
        known = ", ".join(sorted(RULES)) or "none"
        raise RuleConfigError(f"unknown rule {name!r} (known: {known})")
    return RULES[name]({k: v for k, v in options.items() if k != "rule"})
