"""Schemathesis over the server's own OpenAPI document, against the live server.

Every operation gets generated requests (valid and invalid), half of them aimed at real
objects (a task, a label, an image of the caller), and every answer must: not be a 5xx,
have a status code the document lists, and match the documented content type, headers
and schema.
"""

from __future__ import annotations

import os
import random
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .helpers import attach, image_bytes, make_label, make_task, record_fuzz, upload

# Per operation and mode; `make fuzz` runs more (LOCALREPO_OPENAPI_EXAMPLES).
MAX_EXAMPLES = int(os.environ.get("LOCALREPO_OPENAPI_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def openapi_account(live_server) -> Any:
    return live_server.new_account()


@pytest.fixture(scope="module")
def api_schema(live_server) -> Any:
    return schemathesis.openapi.from_url(live_server.url + "openapi.json")


@pytest.fixture
def real_ids(openapi_account) -> dict[str, str]:
    with openapi_account.client() as api:
        task = make_task(api, "fuzzed")
        label = make_label(api, "fuzzed")
        image = upload(api, image_bytes(random.getrandbits(32), size=(16, 16)))
        attach(api, image["id"], label["id"])
        return {"task_id": task["id"], "label_id": label["id"], "image_id": image["id"]}


# (The schemathesis pytest plugin's lazy fixtures do not work with this pytest, so each
# documented operation is a parametrized test that runs its Hypothesis strategy itself.)
OPERATIONS = {
    "/recognition/v2/task/": {"get", "post"},
    "/recognition/v2/task/{task_id}/": {"get", "put", "patch", "delete"},
    "/recognition/v2/task/{task_id}/add-label/": {"post"},
    "/recognition/v2/task/{task_id}/remove-label/": {"post"},
    "/recognition/v2/task/{task_id}/train/": {"post"},
    "/recognition/v2/label/": {"get", "post"},
    "/recognition/v2/label/{label_id}/": {"get", "put", "patch", "delete"},
    "/recognition/v2/label/{label_id}/wipe/": {"delete"},
    "/recognition/v2/label/{label_id}/add-task/": {"post"},
    "/recognition/v2/label/{label_id}/remove-task/": {"post"},
    "/annotate/v2/verification/": {"get", "post"},
    "/annotate/v2/verification/{verification_id}/": {"delete"},
    "/annotate/v2/point/": {"get", "post"},
    "/annotate/v2/point/{point_id}/": {"get", "delete"},
    "/recognition/v2/training-image/": {"get", "post"},
    "/recognition/v2/training-image/{image_id}/": {"get", "put", "patch", "delete"},
    "/recognition/v2/training-image/{image_id}/add-label/": {"post"},
    "/recognition/v2/training-image/{image_id}/remove-label/": {"post"},
    "/recognition/v2/training-image/{image_id}/update-value/": {"post"},
    "/recognition/v2/training-image/{image_id}/update-label/": {"post"},
    "/recognition/v2/training-image/update/": {"post"},
    "/recognition/v2/training-image/changes/": {"get"},
    "/recognition/v2/model/": {"get"},
    "/recognition/v2/model/{model_id}/": {"get", "delete"},
    "/recognition/v2/classify/": {"post"},
    "/account/v2/workspace/": {"get"},
    "/account/v2/user/": {"get"},
    "/account/v2/details/": {"get"},
    "/media/{sha256}/{filename}": {"get"},
}
CASES = [
    (path, method, mode)
    for path, methods in OPERATIONS.items()
    for method in sorted(methods)
    for mode in ("positive", "negative")
]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_openapi_contract(
    path: str, method: str, mode: str, api_schema: Any, live_server, openapi_account, real_ids
) -> None:
    operation = api_schema[path][method.upper()]
    generation_mode = (
        schemathesis.GenerationMode.POSITIVE
        if mode == "positive"
        else schemathesis.GenerationMode.NEGATIVE
    )
    headers = {"Authorization": f"Token {openapi_account.token}"}
    base_url = live_server.url.rstrip("/")
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=generation_mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.generate],
    )
    def run(case: Any) -> None:
        if case.path_parameters:
            for key, value in real_ids.items():
                if key in case.path_parameters and random.random() < 0.5:
                    case.path_parameters[key] = value
        if isinstance(case.body, dict) and "label_id" in case.body and random.random() < 0.5:
            case.body["label_id"] = real_ids["label_id"]
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
        seen.append(response.status_code)

    run()
    record_fuzz(len(seen), len(seen), sum(code >= 500 for code in seen))
    assert seen, "no request was made"
    assert all(code < 500 for code in seen), seen


def test_openapi_document_describes_the_real_shapes(live_server) -> None:
    doc = httpx.get(live_server.url + "openapi.json").json()
    paths = doc["paths"]
    documented = {p: {m for m in ops if m != "head"} for p, ops in paths.items()}
    assert documented == OPERATIONS
    upload_body = paths["/recognition/v2/training-image/"]["post"]["requestBody"]["content"]
    assert upload_body["application/json"]["schema"]["required"] == ["base64"]
    multipart = upload_body["multipart/form-data"]["schema"]["properties"]
    assert multipart["img_path"]["format"] == "binary"
    task_form = paths["/recognition/v2/task/"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(task_form)
    image_schema = doc["components"]["schemas"]["ImageOut"]
    assert {"img_path", "thumb_img_path", "labels", "meta_data"} <= set(image_schema["properties"])


def test_openapi_documents_the_listing_as_before_its_fast_path(live_server) -> None:
    """GET training-image/ is answered by the middleware's fast path; the document still
    comes from the FastAPI route, with every query parameter."""
    doc = httpx.get(live_server.url + "openapi.json").json()
    listing = doc["paths"]["/recognition/v2/training-image/"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {
        "workspace",
        "labels",
        "label",
        "not_labels",
        "verified",
        "test",
        "real",
        "page",
        "page_size",
        "after",
    }
    assert all(p["in"] == "query" for p in params.values())
    assert "next" in params["after"]["description"]
    assert "Invalid page." in params["page"]["description"]
    assert "ignored" in params["page_size"]["description"]
    assert params["labels"]["schema"]["anyOf"][0]["type"] == "array"
    assert listing["security"] == [{"TokenAuth": []}]
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("Page_ImageOut_")
