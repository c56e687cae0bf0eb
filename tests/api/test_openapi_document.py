"""The OpenAPI document is complete and true: what it promises is what the routes answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, Request

from app.main import create_app
from app.openapi import problems
from app.printess.schemas import JOB_STATUSES
from app.printmotor.transition import STATUSES
from tests.support.helpers import make_settings

# Printess's ProduceJobDto (vendor/printess/openapi-production.json), without callbackUrl,
# which printhook always sets itself.
PRODUCE_JOB_DTO = {
    "externalOrderId", "templateName", "contentTemplateName", "exchangeTemplateName", "origin",
    "usePublishedVersion", "distributorName", "meta", "orderMetaData", "outputFiles",
    "productType", "vdp", "outputSettings", "mergeTemplates", "failureRepeats", "copies",
    "outputType", "autoMerge", "atomyxProfile", "combinePdfsIntoOne", "printSettingsTemplate",
}  # fmt: skip
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(make_settings("sqlite+aiosqlite:////nonexistent-dir/x.db"))
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def empty_schemas(node: Any, where: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and value == {}:
                found.append(where)
            found += empty_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += empty_schemas(value, f"{where}/{index}")
    return found


def test_no_response_or_body_is_an_empty_schema(document: dict[str, Any]) -> None:
    assert empty_schemas(document) == []


def test_every_error_is_problem_json_and_the_universal_ones_are_everywhere(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        expected = {"400", "413", "500"}
        if operation.get("security"):
            expected.add("401")
        if operation.get("parameters") or operation.get("requestBody"):
            expected.add("422")
        assert expected <= set(responses), (method, path, sorted(responses))
        for code, response in responses.items():
            if code[0] in "45" and (path, code) != ("/readyz", "503"):
                assert response["content"] == PROBLEM, (method, path, code)
                assert response["description"], (method, path, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/v1/printess/jobs", {"201", "402", "409", "502", "503"}),
        ("put", "/v1/printess/jobs/{jobId}", {"200", "201", "503"}),
        ("get", "/v1/printess/jobs/{jobId}", {"200", "404", "503"}),
        ("get", "/v1/printess/jobs", {"200", "503"}),
        ("post", "/v1/printmotor/orders", {"201", "409", "502", "503"}),
        ("get", "/v1/printmotor/orders/{orderNumber}", {"200", "404", "503"}),
        ("get", "/v1/printmotor/orders", {"200", "503"}),
    ],
)
def test_route_specific_statuses_are_documented(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert statuses <= set(document["paths"][path][method]["responses"])


def test_states_are_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["JobOut"]["properties"]["status"]["enum"] == list(JOB_STATUSES)
    assert schemas["OrderOut"]["properties"]["status"]["enum"] == list(STATUSES)
    for path, statuses in (
        ("/v1/printess/jobs", JOB_STATUSES),
        ("/v1/printmotor/orders", STATUSES),
    ):
        (status,) = [
            p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "status"
        ]
        assert status["schema"]["enum"] == list(statuses)


def test_printess_submit_body_is_produce_job_dto_with_required_template_and_origin(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/v1/printess/jobs"]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert sorted(schema["required"]) == ["origin", "templateName"]
    assert set(schema["properties"]) == PRODUCE_JOB_DTO | {"reference"}
    assert schema["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    assert schema["examples"]


def test_optional_query_parameters_carry_no_null(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert "anyOf" not in parameter["schema"], (method, path, parameter["name"])


def test_keys_and_links_let_a_client_follow_what_it_created(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A key from PRINTHOOK_API_KEYS: `Authorization: Bearer <key>`.",
    }
    created = document["paths"]["/v1/printess/jobs"]["post"]["responses"]["201"]
    assert created["links"]["GetJob"]["operationId"] == "getPrintessJob"
    placed = document["paths"]["/v1/printmotor/orders"]["post"]["responses"]["201"]
    assert placed["links"]["GetOrder"]["operationId"] == "getPrintmotorOrder"


def test_the_completion_applies_to_any_route_in_the_schema() -> None:
    vendor = APIRouter()

    @vendor.post("/callbacks/example/{token}", responses=problems(401, 404, 408, 503))
    async def example(token: str, request: Request) -> dict[str, bool]:
        return {"ok": True}

    app = create_app(make_settings("sqlite+aiosqlite:////nonexistent-dir/x.db"))
    app.include_router(vendor)
    responses = app.openapi()["paths"]["/callbacks/example/{token}"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "404", "408", "413", "422", "500", "503"}
    assert all(responses[code]["content"] == PROBLEM for code in responses if code != "200")


def test_every_served_route_is_in_the_document(document: dict[str, Any]) -> None:
    app = create_app(make_settings("sqlite+aiosqlite:////nonexistent-dir/x.db"))
    own = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    served = {
        (method.lower(), path)
        for route in app.routes
        if (path := getattr(route, "path", None)) and path not in own
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }
    documented = {(method, path) for method, path, _ in operations(document)}
    assert served - documented == set()
    assert ("post", "/webhooks/printmotor") in documented
    assert ("post", "/callbacks/printess/{token}") in documented
    webhook = document["paths"]["/webhooks/printmotor"]["post"]
    assert [p["name"] for p in webhook["parameters"]] == ["X-Printmotor-Hmac-SHA256"]
    assert {"200", "400", "401", "408", "413", "503"} <= set(webhook["responses"])
