"""proxy/policy/contract.py: the response contract compiled at load, and refused with its key path when wrong."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from proxy.policy.loader import PolicyError, load_policy
from tests.policy.test_loader import BASE, write

CONTRACTED: dict[str, Any] = {
    **copy.deepcopy(BASE),
    "schemas": {"error": {"type": "object", "required": ["code"]}, "thing": {"type": "object", "required": ["id"]}},
    "contract": {"source": "the provider's spec", "drift_sample_rate": 0.5,
                 "errors": {"schema": {"$ref": "#/$defs/error"}, "provider": {"415": {"silent": "not listed"}}}},
}
CONTRACTED["routes"][0]["responses"] = {
    "201": {"description": "made", "schema": {"type": "object", "properties": {"data": {"$ref": "#/$defs/thing"}}},
            "headers": ["Location"], "provider": {"differs": "data.id is a number there", "at": ["data.id"]}},
}


def test_the_contract_is_compiled_with_the_policy(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, CONTRACTED))
    contract = policy.contract
    assert contract is not None
    assert (contract.source, contract.sample_rate) == ("the provider's spec", 0.5)
    made = contract.documented("things.create", 201)
    assert made is not None and made.headers == ("Location",) and made.validator is not None
    assert made.validator.is_valid({"data": {"id": "t"}}) and not made.validator.is_valid({"data": {}})
    assert contract.documented("things.create", 200) is None  # a success is the route's own or nothing
    error = contract.documented("things.get", 404)
    assert error is contract.error and error is not None and not error.validator.is_valid({})  # type: ignore[union-attr]
    assert contract.note("things.create", 201).at == ("data.id",)  # type: ignore[union-attr]
    assert contract.note("things.get", 415).kind == "silent"  # type: ignore[union-attr]
    assert contract.routes["things.get"].answers == {}


def test_without_a_contract_the_rate_is_one_percent_and_nothing_is_documented(tmp_path: Path) -> None:
    contract = load_policy(write(tmp_path, BASE)).contract
    assert contract is not None and contract.sample_rate == 0.01
    assert contract.error is None and contract.documented("things.create", 201) is None


def _set(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CONTRACTED)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:  # list indices are digits; status keys are strings
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return doc


@pytest.mark.parametrize(("doc", "where", "message"), [
    (_set("contract.drift_sample_rate", 2), "contract.drift_sample_rate", "greater than the maximum"),
    (_set("contract.errors.schema", {"$ref": "#/$defs/nowhere"}), "contract.errors.schema", "unresolvable"),
    (_set("routes.0.responses.201.schema", {"type": "strin"}), "routes.0.responses.201.schema", "strin"),
    (_set("routes.0.responses", {"2xx": {}}), "routes.0.responses", "2xx"),
    (_set("routes.0.responses.201.provider", {"differs": "no paths"}), "routes.0.responses.201.provider", ""),
    (_set("contract.errors.provider", {"415": {"silent": "x", "at": ["a"]}}), "contract.errors.provider.415", ""),
], ids=["rate", "dangling-ref", "bad-schema", "bad-status", "differs-without-at", "silent-with-at"])
def test_a_wrong_contract_fails_at_load_with_its_key_path(tmp_path: Path, doc: dict[str, Any], where: str,
                                                         message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(where) + ".*" + re.escape(message)):
        load_policy(write(tmp_path, doc))
