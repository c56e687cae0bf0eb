"""Health and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import ContextDep
from app.migrate import schema_status

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """The process is up. Never touches the database."""
    return {"ok": True}


@router.get("/readyz")
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
