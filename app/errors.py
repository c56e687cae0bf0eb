"""One error shape for everything: RFC 9457 `application/problem+json`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.logging import mask_path

log = logging.getLogger("printhook.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:printhook:problem:"


class ProblemError(Exception):
    """An error answered as problem+json. Subclasses fix `status`, `slug` and `title`."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Unprocessable(ProblemError):
    status, slug, title = 422, "validation", "Request is not valid"


class UpstreamError(ProblemError):
    """A vendor refused or failed a call made on the caller's behalf."""

    status, slug, title = 502, "upstream", "Vendor call failed"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


# Connectivity failures of the database: the caller should retry, so 503, never 500.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError, OSError)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DATABASE_UNAVAILABLE)


def problem_for(exc: ProblemError, path: str) -> JSONResponse:
    """The answer for a ProblemError raised while handling a request to `path`."""
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        # The path may hold a Printess callback token: never echo it.
        instance=mask_path(path) if exc.status != 404 else None,
        headers=exc.headers,
        **exc.extensions,
    )


# Raised by the database layer; a connectivity failure among them becomes 503.
DATABASE_ERRORS = (DBAPIError, PoolTimeoutError, OSError)


def database_error_response(exc: Exception) -> JSONResponse:
    """503 (retry later) for a database outage, 500 for any other database error."""
    if not is_database_unavailable(exc):
        log.error("request.failed", exc_info=exc)
        return problem_response(500, "internal", "Internal error")
    log.warning("db.unavailable", extra={"error_class": type(exc).__name__})
    return problem_response(
        503,
        "database-unavailable",
        "Database unavailable",
        "retry later",
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_for(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http"
        )
        return problem_response(
            exc.status_code,
            slug,
            str(exc.detail) if exc.detail else "HTTP error",
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Report where and what, never the submitted values (they may hold secrets).
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return problem_response(
            422, "validation", "Request is not valid", "see errors", errors=errors
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return database_error_response(exc)

    # Registered per class (not on Exception) so Starlette answers without re-raising.
    for exc_class in DATABASE_ERRORS:
        app.add_exception_handler(exc_class, _database)
