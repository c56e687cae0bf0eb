"""The OpenAPI document, completed so that it tells the whole truth about every route.

FastAPI documents what a route returns on success and its own 422. printhook answers more:
every error is `application/problem+json` (RFC 9457), and some answers come from outside the
route (the edge limits, the key check, the database). `install_openapi` builds FastAPI's
document once and then, for every operation of any route in it:

- documents 400 (malformed body; NUL in the path or query), 413 (body too large) and 500
  on every operation, 401 where the operation needs a key (its `security`), 422 where it
  takes parameters or a body, and gives every 4xx/5xx answer the problem+json schema;
- keeps statuses a route declares itself with `responses=problems(...)` (404, 409, 502,
  503 ...);
- drops FastAPI's `HTTPValidationError` (printhook never answers it), states optional
  query and header parameters without the `null` a query string cannot carry, and states
  maps with constrained keys as `propertyNames` (what is validated).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import PROBLEM_JSON, TYPE_PREFIX
from app.hygiene import TEXT_PATTERN

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS = {
    400: "Bad request: malformed JSON, a NUL character in the path or query, or a query "
    "value outside its documented form",
    401: "No key, or not a key from PRINTHOOK_API_KEYS",
    402: "Printess: insufficient funds",
    404: "Not found",
    408: "The request body arrived too slowly",
    409: "Conflict: the same request is in progress, or its first outcome is unknown",
    413: "The request body is over PRINTHOOK_MAX_BODY_BYTES",
    422: "The request does not match this document",
    500: "Internal error (a bug; logged with the request id)",
    502: "A vendor refused or failed the call made on the caller's behalf",
    503: "The database or a vendor is unavailable; retry later (see Retry-After)",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `type` is stable: "
    f"`{TYPE_PREFIX}<slug>`. Extra members may be present.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": f"`{TYPE_PREFIX}<slug>`"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "With 422: where the request failed the document (no values).",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

# A JSON value whose strings (and keys) hold no NUL: what pass-through fields may carry.
_TEXT = {"type": "string", "pattern": TEXT_PATTERN}
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "title": "JsonValue",
    "description": "Any JSON value; strings and keys may not contain NUL (U+0000).",
    "anyOf": [
        _TEXT,
        {"type": "boolean"},
        {"type": "integer"},
        {"type": "number"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": _TEXT,
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ],
}

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem statuses it answers itself."""
    return {
        status: {
            "description": DESCRIPTIONS.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        }
        for status in statuses
    }


def _declares_own_body(response: dict[str, Any]) -> bool:
    """True when a route documented a body of its own for this status (e.g. /readyz's 503)."""
    for media in (response.get("content") or {}).values():
        schema = media.get("schema")
        if schema and schema.get("$ref") not in (
            "#/components/schemas/HTTPValidationError",
            PROBLEM_REF["$ref"],
        ):
            return True
    return False


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    response = dict(existing or {})
    if _declares_own_body(response):
        return response
    if not response.get("description") or response["description"] in (
        "Validation Error",
        "Successful Response",
        "Additional Response",
    ):
        response["description"] = DESCRIPTIONS.get(status, "Error")
    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    return response


def _plain_parameter_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` of an optional parameter as X (with the outer keywords kept)."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    non_null = [option for option in options if option.get("type") != "null"]
    if len(non_null) != 1 or len(non_null) == len(options):
        return schema
    plain = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**non_null[0], **plain}


def _complete_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {400, 413, 500}
    if operation.get("security"):
        statuses.add(401)
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    for status in statuses:
        responses[str(status)] = _problem_response(status, responses.get(str(status)))
    for code, response in list(responses.items()):
        if code[:1] in ("4", "5"):
            responses[code] = _problem_response(int(code), response)
    for parameter in operation.get("parameters", []):
        if not parameter.get("required") and "schema" in parameter:
            parameter["schema"] = _plain_parameter_schema(parameter["schema"])


def _keyed_maps(node: Any) -> None:
    """pydantic states `dict[<str with pattern>, V]` as `patternProperties`, which lets keys
    that miss the pattern through; what it validates is `propertyNames` + `additionalProperties`.
    """
    if isinstance(node, dict):
        pattern_properties = node.get("patternProperties")
        if (
            isinstance(pattern_properties, dict)
            and len(pattern_properties) == 1
            and "additionalProperties" not in node
        ):
            ((pattern, value),) = pattern_properties.items()
            del node["patternProperties"]
            node["propertyNames"] = {"pattern": pattern}
            node["additionalProperties"] = value
        for child in node.values():
            _keyed_maps(child)
    elif isinstance(node, list):
        for child in node:
            _keyed_maps(child)


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document in place (see the module docstring) and return it."""
    _keyed_maps(document)
    for path_item in document.get("paths", {}).values():
        for method in _METHODS:
            if method in path_item:
                _complete_operation(path_item[method])
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    if "JsonValue" in schemas:
        schemas["JsonValue"] = JSON_VALUE_SCHEMA
    return document


ACK_SCHEMA: dict[str, Any] = {
    "title": "Ack",
    "description": "The raw request is stored; it is applied in the background. A redelivery "
    "of the same bytes gets the first copy's `eventId`.",
    "type": "object",
    "required": ["ok", "eventId"],
    "properties": {
        "ok": {"type": "boolean", "enum": [True]},
        "eventId": {
            "type": "integer",
            "minimum": 1,
            "description": "The stored event: `GET /v1/inbound-events/{eventId}`",
        },
    },
    "additionalProperties": False,
}

_ANY_JSON_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "The vendor's JSON, stored as raw bytes (verified over exactly "
                "these bytes, never re-serialised).",
            }
        }
    },
}


def _problem_codes(*statuses: int) -> dict[str, Any]:
    return {str(status): response for status, response in problems(*statuses).items()}


_ACKED = {
    "200": {
        "description": "Stored (or a duplicate of a stored event); applied in the background",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}},
    }
}

# The vendors' ack endpoints are bare ASGI routes (the hot path skips FastAPI's request
# handling), so FastAPI cannot describe them: they are stated here.
VENDOR_PATHS: dict[str, Any] = {
    "/webhooks/printmotor": {
        "post": {
            "tags": ["vendor"],
            "operationId": "receivePrintmotorWebhook",
            "summary": "Printmotor's signed webhook",
            "description": "Checks `X-Printmotor-Hmac-SHA256` (HMAC-SHA256 of the raw body "
            "with any key of PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS, base64 or hex), stores the "
            "raw bytes and answers. A body that is not a JSON object with a positive integer "
            "`userOrder.orderNumber` is stored as rejected and answered 400.",
            "parameters": [
                {
                    "name": "X-Printmotor-Hmac-SHA256",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 1024},
                    "description": "base64 (or hex) HMAC-SHA256 of the raw body; exactly one",
                }
            ],
            "requestBody": _ANY_JSON_BODY,
            "responses": {**_ACKED, **_problem_codes(400, 401, 408, 413, 503)},
        }
    },
    "/callbacks/printess/{token}": {
        "post": {
            "tags": ["vendor"],
            "operationId": "receivePrintessCallback",
            "summary": "Printess's render callback",
            "description": "`token` is the per-job token printhook put into the `callbackUrl` "
            "it sent to Printess, or PRINTHOOK_PRINTESS_CALLBACK_SECRET (jobs the shop submits "
            "itself). It is checked before the body is read; an unknown token is 404 and "
            "nothing is stored. A body that is not a JSON object with a string `jobId` (the "
            "token's job, for a per-job token) is stored as rejected and answered 400.",
            "parameters": [
                {
                    "name": "token",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 512},
                }
            ],
            "requestBody": _ANY_JSON_BODY,
            "responses": {**_ACKED, **_problem_codes(400, 404, 408, 413, 503)},
        }
    },
}


# /metrics is served as Prometheus text, outside FastAPI's response models.
OPS_PATHS: dict[str, Any] = {
    "/metrics": {
        "get": {
            "tags": ["ops"],
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "description": "Prometheus text exposition format. Keep it private: the example "
            "nginx configuration allows only loopback and private networks.",
            "responses": {
                "200": {
                    "description": "The metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
}


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            document.setdefault("paths", {}).update({**VENDOR_PATHS, **OPS_PATHS})
            document.setdefault("components", {}).setdefault("schemas", {})["Ack"] = ACK_SCHEMA
            app.openapi_schema = complete_document(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
