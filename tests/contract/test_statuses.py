"""The engine's error codes and the statuses they are answered with (proxy/policy/contract.py)."""

from __future__ import annotations

from proxy.policy.contract import ENGINE_STATUSES, error_statuses
from proxy.policy.loader import ERROR_CODES


def test_every_engine_code_has_its_statuses() -> None:
    """A new code (proxy.policy.loader.ERROR_CODES) must say which statuses it answers with: the OpenAPI
    description, the contract tests and Schemathesis all list an operation's errors from this table."""
    assert set(ENGINE_STATUSES) == set(ERROR_CODES)


def test_error_statuses_are_client_and_server_errors() -> None:
    assert all(400 <= s < 600 for s in error_statuses())
    assert error_statuses() == tuple(sorted(set(error_statuses())))
