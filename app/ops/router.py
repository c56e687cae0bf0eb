"""Health, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import ContextDep
from app.errors import is_database_unavailable
from app.migrate import schema_status
from app.ops.backlog import refresh_backlog_gauges

log = logging.getLogger("printhook.ops")

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """The process is up. Never touches the database."""
    return {"ok": True}


_NOT_READY = {
    "type": "object",
    "required": ["ok", "reason"],
    "properties": {
        "ok": {"type": "boolean", "enum": [False]},
        "reason": {"type": "string", "enum": ["database unreachable", "schema not at head"]},
        "error": {"type": "string"},
        "current": {"type": ["string", "null"]},
        "head": {"type": ["string", "null"]},
    },
}
_READY = {
    "type": "object",
    "required": ["ok", "schema"],
    "properties": {"ok": {"type": "boolean", "enum": [True]}, "schema": {"type": "string"}},
}


@router.get(
    "/readyz",
    responses={
        200: {"content": {"application/json": {"schema": _READY}}},
        503: {
            "description": "Not ready",
            "content": {"application/json": {"schema": _NOT_READY}},
        },
    },
)
async def readyz(ctx: ContextDep) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    try:
        current, head = await schema_status(ctx.engine)
    except Exception as exc:
        return JSONResponse(
            {"ok": False, "reason": "database unreachable", "error": type(exc).__name__},
            status_code=503,
        )
    if current != head:
        return JSONResponse(
            {"ok": False, "reason": "schema not at head", "current": current, "head": head},
            status_code=503,
        )
    return JSONResponse({"ok": True, "schema": current})


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: ContextDep) -> Response:
    """Prometheus text format. Backlog gauges are refreshed from the database per scrape;
    with the database down the counters are still served (the gauges keep their last value)."""
    try:
        async with ctx.session_factory() as session:
            await refresh_backlog_gauges(session)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        log.warning("metrics.backlog.unavailable", extra={"error_class": type(exc).__name__})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
