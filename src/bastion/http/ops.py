"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.metrics import Metrics

#: A readiness check: returns (ok, detail). It must not raise.
ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]


def routes(metrics: Metrics, checks: dict[str, ReadinessCheck]) -> list[Route]:
    """The /healthz, /readyz and /metrics routes."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        results = {}
        ready = True
        for name, check in checks.items():
            ok, detail = await check()
            results[name] = {"ok": ok, "detail": detail}
            ready = ready and ok
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": results},
                            status_code=200 if ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
