"""The gateway's own endpoints (RFC 9457 problem details on errors): health, readiness, metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from proxy.app import Gateway


def admin_routes(gateway: Gateway) -> list[Route]:
    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Readiness: policies loaded and upstream clients started."""
        ready = gateway.ready
        body = {
            "status": "ready" if ready else "starting",
            "policies": [p.name for p in gateway.policies.policies],
            "issued_keys": len(gateway.registry),
        }
        if ready:
            return JSONResponse(body)
        return JSONResponse(body, status_code=503, media_type="application/problem+json")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


ADMIN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
