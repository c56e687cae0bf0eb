"""One error shape for everything: RFC 9457 `application/problem+json`."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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


class IdempotencyKeyReused(Unprocessable):
    """The key was used before with another request body (IETF idempotency draft: 422)."""

    slug, title = "idempotency-key-reused", "Idempotency-Key used for another request"


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


# SQLSTATEs PostgreSQL uses for "not now" rather than "wrong": class 08 (connection
# exception) and 57P01-57P03 (shutting down, crashed, starting up or stopping: `pg_ctl stop`,
# failover). asyncpg raises some of them as a plain DBAPIError, not an OperationalError.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(code, str) and code.startswith(_UNAVAILABLE_SQLSTATES):
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
        # A bug. The driver's message may quote the values it refused (request bodies,
        # addresses), so only the error's kind and where it happened are logged.
        log.error("db.error", extra=_database_error_fields(exc))
        return problem_response(500, "internal", "Internal error", "the error has been logged")
    log.warning("db.unavailable", extra={"error_class": type(exc).__name__})
    return problem_response(
        503,
        "database-unavailable",
        "Database unavailable",
        "retry later",
        headers={"Retry-After": "5"},
    )


def _database_error_fields(exc: BaseException) -> dict[str, Any]:
    orig = getattr(exc, "orig", None)
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "error_class": type(exc).__name__,
        "driver_error": type(orig).__name__ if orig is not None else None,
        "sqlstate": getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None),
        "where": [f"{frame.filename}:{frame.lineno} {frame.name}" for frame in frames[-6:]],
    }


# FastAPI's words when a body cannot be read as JSON for a reason other than its syntax.
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (for a complete `Allow`).

    Asked of the routes themselves, method by method, so routers included in routers count."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(exc.headers or {})
    status = exc.status_code
    if status == 404:
        return problem_response(404, "not-found", "Not found", "no route serves this path")
    if status == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        return problem_response(
            405,
            "method-not-allowed",
            "Method not allowed",
            f"{request.method} is not served here; allowed: {', '.join(allowed)}",
            headers=headers,
        )
    if status == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
        # The body cannot be decoded at all (not UTF-8, nested too deep, huge numbers).
        return problem_response(
            400, "malformed-body", "Malformed request body", "the body is not valid JSON"
        )
    slug = {401: "unauthorized", 413: "payload-too-large"}.get(status, "http")
    return problem_response(
        status,
        slug,
        str(exc.detail) if exc.detail else "HTTP error",
        str(exc.detail) if exc.detail else None,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_for(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _http_problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Report where and what, never the submitted values (they may hold secrets).
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        if any(err["type"] == "json_invalid" for err in errors):
            return problem_response(
                400, "malformed-body", "Malformed request body", "the body is not valid JSON"
            )
        return problem_response(
            422, "validation", "Request is not valid", "see errors", errors=errors
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return database_error_response(exc)

    # Registered per class (not on Exception) so Starlette answers without re-raising.
    for exc_class in DATABASE_ERRORS:
        app.add_exception_handler(exc_class, _database)
