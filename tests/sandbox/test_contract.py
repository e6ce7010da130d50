"""Every answer the sandbox writes follows the policy's contract (``responses`` of its route, or the dialect's
``errors.schema``): the OpenAPI description (``testmode-proxy openapi blueticked``) and the drift check read
the same schemas (policies/README.md, "contract")."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.render import error_response
from proxy.sandbox.parts import Call
from tests.support.sandbox_world import World


async def test_every_operation_answers_what_its_route_documents(world: World) -> None:
    policy, contract = world.policy, world.policy.contract
    assert contract is not None and policy.sandbox is not None
    route_of = {operation: route_id for route_id, operation in policy.sandbox.operations.items()}
    ws = world.workspace()
    answers: list[tuple[str, int, Any]] = []
    refusals: list[GatewayError] = []

    def run(operation: str, body: dict[str, Any] | None = None, **path: str) -> Any:
        try:
            status, doc = world.sandbox.handle(operation, ws, Call(body or {}, path, {}))
        except GatewayError as error:
            refusals.append(error)
            return None
        answers.append((route_of[operation], status, doc))
        return doc

    contact = run("contacts.upsert", {"phone": "+27800000003", "tags": ["vip"]})
    run("contacts.upsert", {"phone": "+27800000003", "email": "sam@example.com"})
    run("contacts.update", {"first_name": "Sam"}, id=contact["id"])
    run("contacts.get", id=contact["id"])
    run("contacts.list")
    template = run("templates.create", {"name": "hi_v1", "category": "utility", "language": "en_US",
                                        "body": "Hi {{1}}."})
    await world.advance(ws, 5)
    run("templates.get", id=template["id"])
    run("templates.list")
    send = {"channel": "whatsapp", "to": {"phone": "+27800000003"}, "template_id": template["id"],
            "template_variables": {"1": "Sam"}}
    run("messages.send", {**send, "test_mode": True})
    message = run("messages.send", send)
    await world.advance(ws, 60)  # delivered, read, and a reply
    run("messages.get", id=message["id"])
    run("messages.list")
    entry = run("suppression.add", {"identifier": "+27800000001"})
    run("suppression.add", {"identifier": "+27800000001"})
    run("suppression.list")
    run("suppression.remove", id=entry["id"])
    for operation, body, path in [("contacts.get", {}, {"id": "con_x"}),
                                  ("messages.send", {**send, "template_id": "x"}, {}),
                                  ("templates.create", {**send, "name": "b", "category": "utility",
                                                        "language": "en_US", "body": "{{x}}"}, {}),
                                  ("suppression.remove", {}, {"id": entry["id"]})]:
        run(operation, body, **path)

    own = {route for route, operation in policy.sandbox.operations.items() if not operation.startswith("webhooks.")}
    assert {route for route, _, _ in answers} == own  # webhooks.*: tests/e2e/sandbox/test_webhooks.py
    for route_id, status, doc in answers:
        documented = contract.documented(route_id, status)
        assert documented is not None and documented.validator is not None, (route_id, status)
        assert documented.validator.is_valid(orjson.loads(orjson.dumps(doc))), (route_id, status, doc)
    assert len(refusals) == 4
    assert contract.error is not None and contract.error.validator is not None
    for error in refusals:
        body, _ = error_response(error, RequestContext("x", "req_test_x", policy=policy, test_mode=True))
        assert contract.error.validator.is_valid(orjson.loads(body)), body
