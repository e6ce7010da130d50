"""Every route the official Sent clients call has a test-mode answer or a documented, deliberate refusal in
Sent's envelope (issue 14). The routes are read from the installed packages (PyPI ``sentdm``, npm
``@sentdm/sentdm`` in tests/node), so a client release that adds a route fails here until the pack says
what test mode does with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.policy.loader import load_policies
from proxy.policy.model import Policy
from tests.contract.client_routes import ClientRoute, normalise, python_routes, typescript_routes
from tests.support.servers import POLICIES

SENT = load_policies(POLICIES).by_name("sent")
NODE_PACKAGE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "@sentdm" / "sentdm"


def _unanswered(policy: Policy, routes: set[ClientRoute]) -> list[str]:
    assert policy.contract is not None
    declared = {(r.method, normalise(r.path.text)): r for r in policy.route_list}
    problems = []
    for route in sorted(routes):
        found = declared.get(route.key)
        if found is None:
            problems.append(f"{route.method} {route.path}: no route in policies/sent.yaml")
        elif not found.responses and not policy.contract.routes[found.id].refusal:
            problems.append(f"{route.method} {route.path} ({found.id}): neither a test answer nor refused_in_test_mode")
    return problems


def test_the_python_clients_routes_are_answered_or_refused_on_purpose() -> None:
    assert SENT is not None
    routes = python_routes()
    assert len(routes) >= 60  # the reader found the client's calls (0.46.0 has 61)
    assert _unanswered(SENT, routes) == []


def test_the_typescript_clients_routes_are_answered_or_refused_on_purpose(node_modules: Path) -> None:
    assert SENT is not None
    routes = typescript_routes(NODE_PACKAGE)
    assert len(routes) >= 40, sorted(routes)
    assert _unanswered(SENT, routes) == []


def test_a_missing_route_is_reported() -> None:
    assert SENT is not None
    ghost = {ClientRoute("POST", "/v3/ghosts/{}"), ClientRoute("GET", "/v3/me")}
    assert _unanswered(SENT, ghost) == ["POST /v3/ghosts/{}: no route in policies/sent.yaml"]


@pytest.mark.parametrize("route_id", [r.id for r in SENT.route_list if not r.responses] if SENT else [])
def test_a_refused_route_says_why(route_id: str) -> None:
    assert SENT is not None and SENT.contract is not None
    reason = SENT.contract.routes[route_id].refusal
    assert reason and len(reason) > 20
