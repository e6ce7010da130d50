"""The control surface's ASGI app: one Starlette router under ``/_testmode``.

Each capability contributes its routes from its own module (``routes(parts) -> list[BaseRoute]``);
this module only mounts them and renders errors as RFC 9457 problem details (:mod:`proxy.render`).
"""

from __future__ import annotations

import os

import orjson
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from proxy.components import Components
from proxy.control import sandbox, webhooks
from proxy.errors import GatewayError
from proxy.render import PROBLEM_JSON, problem_details

CONTROL_PREFIX = "/_testmode"
log = structlog.get_logger("proxy.control")


def request_id() -> str:
    return "req_" + os.urandom(12).hex()


def problem(error: GatewayError) -> Response:
    rid = request_id()
    headers = {"x-request-id": rid, **error.headers}
    return Response(orjson.dumps(problem_details(error, rid)), status_code=error.status, headers=headers,
                    media_type=PROBLEM_JSON.decode())


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return problem(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return problem(GatewayError(exc.status_code, code, str(exc.detail)))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("control_internal_error")
    return problem(GatewayError(500, "internal_error", "Internal gateway error."))


def control_app(parts: Components, extra: list[BaseRoute] | None = None) -> Starlette:
    """The app serving ``/_testmode/…``; capabilities add their routes in :func:`routes`."""
    return Starlette(
        routes=[Mount(CONTROL_PREFIX, routes=[*routes(parts), *(extra or [])])],
        exception_handlers={GatewayError: _gateway_error, HTTPException: _http_error, Exception: _internal_error},
    )


def routes(parts: Components) -> list[BaseRoute]:
    """Every capability's control routes."""
    return [*webhooks.routes(parts), *sandbox.routes(parts)]
