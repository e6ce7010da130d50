"""The all-errors validator: jsonschema's Draft 7, metered, and silent about the instance.

It runs only on a body the fast validator refused, to say why (:mod:`proxy.policy.validation`), so
it never decides validity; it must explain a hostile body cheaply (security issue, item 2):

* every keyword evaluated costs a step, and so does every element a keyword walks and every KiB
  a pattern scans (:func:`proxy.policy.findings.spend`): the pass ends within its budget whatever
  the body;
* an array longer than its ``maxItems`` (an object with more keys than its ``maxProperties``) is
  reported for its size alone, its elements not walked: the provider refuses it for that, and
  walking 60,000 items to say so is what the issue measured;
* an object's small values are visited before its large ones (:func:`_properties`): a mistake in
  ``subject`` is found before the budget goes on 1,000 personalizations (the listing is sorted later);
* the keywords that judge containers are restated without jsonschema's messages, which render the
  instance with ``repr`` (a failing 1 MB array cost a 1 MB string; findings never read the message);
  ``uniqueItems`` hashes canonical forms where jsonschema compares unhashable items pairwise
  (1,000 distinct objects: ~1 s); ``anyOf``/``oneOf``/``not`` stop at a branch's first error
  instead of collecting them all. Keywords on strings and numbers are jsonschema's own.

``tests/policy/test_all_errors.py`` checks that it reports the same errors as jsonschema's
``Draft7Validator`` on bodies within their bounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.validators import extend

from proxy.policy.findings import spend

Keyword = Callable[[Any, Any, Any, dict[str, Any]], Iterable[SchemaError] | None]

# Keywords that walk an array's items or an object's keys, by the bound that makes that pointless once
# exceeded; those charged per element up front (the rest charge as they go).
_BOUND = {"items": "maxItems", "additionalItems": "maxItems", "contains": "maxItems", "uniqueItems": "maxItems",
          "additionalProperties": "maxProperties", "patternProperties": "maxProperties",
          "propertyNames": "maxProperties"}
_UPFRONT = frozenset({"contains", "uniqueItems", "patternProperties", "propertyNames"})
# Keywords that scan a string: one more step per KiB (a pattern over a 30 MB attachment is not one step).
_SCANS = frozenset({"pattern", "format"})


def _metered(name: str, keyword: Keyword) -> Keyword:
    bound = _BOUND.get(name)
    upfront = name in _UPFRONT
    scans = name in _SCANS

    def run(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterable[SchemaError] | None:
        steps = 1
        if scans and isinstance(instance, str):
            steps += len(instance) >> 10
        elif bound is not None and isinstance(instance, list | dict):
            limit = schema.get(bound)
            if isinstance(limit, int) and not isinstance(limit, bool) and len(instance) > limit:
                return None  # the bound's own error says it all
            if upfront:
                steps += len(instance)
        spend(steps)
        return keyword(validator, value, instance, schema)

    return run


def _holds(validator: Any, instance: Any, subschema: Any, index: int | None = None) -> bool:
    """``instance`` is valid under ``subschema`` (stops at the first error)."""
    return next(iter(validator.descend(instance, subschema, schema_path=index)), None) is None


def json_equal(one: Any, two: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is not ``1`` (Python's ``True == 1``)."""
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(json_equal(one[key], two[key]) for key in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def canonical(value: Any) -> Any:
    """A hashable form, equal exactly when :func:`json_equal` says so."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, list):
        return (list, tuple(canonical(item) for item in value))
    if isinstance(value, dict):
        return (dict, frozenset((key, canonical(item)) for key, item in value.items()))
    return value


# ---------------------------------------------------------------------------------------- keywords
# Signature (validator, keyword value, instance, schema), as jsonschema calls them.


def _type(validator: Any, types: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    names = types if isinstance(types, list) else [types]
    if not any(validator.is_type(instance, name) for name in names):
        yield SchemaError("has the wrong type")


def _size(kind: type[list[Any]] | type[dict[str, Any]], too_many: bool) -> Keyword:
    def check(validator: Any, limit: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
        if isinstance(instance, kind) and (len(instance) > limit if too_many else len(instance) < limit):
            yield SchemaError("has too many elements" if too_many else "has too few elements")

    return check


def _enum(validator: Any, options: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if not any(json_equal(option, instance) for option in options):
        yield SchemaError("is not one of the options")


def _const(validator: Any, const: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if not json_equal(const, instance):
        yield SchemaError("is not the constant")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if unique and isinstance(instance, list) and len({canonical(item) for item in instance}) < len(instance):
        yield SchemaError("has repeated elements")


def _items(validator: Any, items: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if not isinstance(instance, list):
        return
    for index, item in enumerate(instance):
        if isinstance(items, list):  # draft 7's tuple form: one schema per position
            if index >= len(items):
                return
            spend(1)
            yield from validator.descend(item, items[index], path=index, schema_path=index)
        else:
            spend(1)
            yield from validator.descend(item, items, path=index)


def _additional_items(validator: Any, extra: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    items = schema.get("items")
    if not isinstance(instance, list) or not isinstance(items, list):
        return  # only the tuple form has additional items
    if isinstance(extra, dict):
        for index in range(len(items), len(instance)):
            spend(1)
            yield from validator.descend(instance[index], extra, path=index)
    elif extra is False and len(instance) > len(items):
        yield SchemaError("has additional items")


def _contains(validator: Any, contains: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if isinstance(instance, list) and not any(_holds(validator, item, contains) for item in instance):
        yield SchemaError("has no matching item")


def _properties(validator: Any, properties: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    """Scalars first, then containers by length (the order findings are found in, not listed in)."""
    if not isinstance(instance, dict):
        return
    present = [name for name in properties if name in instance]
    present.sort(key=lambda name: len(instance[name]) if isinstance(instance[name], list | dict) else -1)
    for name in present:
        yield from validator.descend(instance[name], properties[name], path=name, schema_path=name)


_ABSENT = object()


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: dict[str, Any]
                           ) -> Iterator[SchemaError]:
    """In the body's key order (jsonschema walks a set: which findings come first would vary by run)."""
    if not isinstance(instance, dict):
        return
    declared = schema.get("properties", {})
    patterns = "|".join(schema.get("patternProperties", {}))
    matches = re.compile(patterns).search if patterns else None

    def extras() -> Iterator[str]:
        for name in instance:
            spend(1)
            if name not in declared and not (matches is not None and matches(name)):
                yield name

    if isinstance(extra, dict):
        for name in extras():
            yield from validator.descend(instance[name], extra, path=name)
    elif extra is False and next(extras(), _ABSENT) is not _ABSENT:
        yield SchemaError("has unexpected properties")


def _any_of(validator: Any, branches: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if not any(_holds(validator, instance, branch, index) for index, branch in enumerate(branches)):
        yield SchemaError("matches no branch")


def _one_of(validator: Any, branches: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    valid = (index for index, branch in enumerate(branches) if _holds(validator, instance, branch, index))
    if next(valid, None) is None:
        yield SchemaError("matches no branch")
    elif next(valid, None) is not None:
        yield SchemaError("matches more than one branch")


def _not(validator: Any, negated: Any, instance: Any, schema: dict[str, Any]) -> Iterator[SchemaError]:
    if _holds(validator, instance, negated):
        yield SchemaError("matches what it must not")


_RESTATED: dict[str, Keyword] = {
    "type": _type, "enum": _enum, "const": _const,
    "maxItems": _size(list, True), "minItems": _size(list, False),
    "maxProperties": _size(dict, True), "minProperties": _size(dict, False),
    "uniqueItems": _unique_items, "items": _items, "additionalItems": _additional_items, "contains": _contains,
    "properties": _properties, "additionalProperties": _additional_properties,
    "anyOf": _any_of, "oneOf": _one_of, "not": _not,
}

AllErrorsValidator: Any = extend(  # type: ignore[no-untyped-call]  # the stubs leave extend untyped
    Draft7Validator,
    {name: _metered(name, _RESTATED.get(name) or keyword) for name, keyword in Draft7Validator.VALIDATORS.items()},
)
