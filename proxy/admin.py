"""The gateway's own endpoints (RFC 9457 problem details on errors): health, readiness, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from proxy.app import Gateway


_READY = {"status": "ready"}
_STARTING = {"status": "starting"}


def admin_routes(gateway: Gateway) -> list[Route]:
    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Readiness: policies loaded and upstream clients started.

        Ready or not, and nothing else: the endpoint has no authentication, and how many keys the registry
        holds or which providers are configured is no business of whoever can reach the port (security
        issue #10, item 13). Operators have ``testmode-proxy keys list`` and the ``key_registry_reloaded`` log line.
        """
        if gateway.ready:
            return JSONResponse(_READY)
        return JSONResponse(_STARTING, status_code=503, media_type="application/problem+json")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


ADMIN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
