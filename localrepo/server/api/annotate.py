"""``annotate/v2/``: verifications of an image (``verification/``, counted in the
image's ``verifyCount`` and its ``verified`` filter) and points (``point/``), as the
official SDK's ``Image.verify()``, ``get_verifications()``, ``unverify()``,
``create_point()`` and ``get_points()`` call them (docs/api.md, "Annotations")."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bodies import body_doc, check_uuid, parse, read_body
from ..context import Principal, get_ctx
from ..data import annotations
from ..errors import field_error
from ..pagination import PAGE_QUERY, PAGE_SIZE_QUERY, page_body, page_request
from ..schemas import Page, PointCreate, PointOut, VerificationCreate, VerificationOut
from .auth import authenticate
from .common import body_workspace, delete_by_id, ok, path_id

router = APIRouter(prefix="/annotate/v2", tags=["annotations"])


@router.get("/verification/", response_model=Page[VerificationOut])
def list_verifications(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    image: str | None = Query(None, description="Only this image's verifications."),
    user: str | None = Query(None, description="Only this user's."),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    ctx = get_ctx(request)
    image_id = check_uuid("image", image) if image else None
    ws = ctx.resolve_workspace_of(principal, workspace, "image", image_id or "")
    pr = page_request(request, ctx.settings)
    user_id = check_uuid("user", user) if user else None
    count, results = annotations.verification_page(ctx.db, ws, pr, image=image_id, user=user_id)
    return ok(page_body(request, pr, count, results))


@router.post(
    "/verification/",
    status_code=201,
    response_model=VerificationOut,
    openapi_extra=body_doc(VerificationCreate, form=True),
)
async def create_verification(
    request: Request, principal: Principal = Depends(authenticate)
) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, VerificationCreate)
    body = parse(VerificationCreate, data)
    given = body.image_id or body.image
    if not given:
        raise field_error("image_id", "This field is required.")
    image_id = check_uuid("image_id", given)
    if body.user and check_uuid("user", body.user) != principal.user_id:
        raise field_error("user", "You can record only your own verification.")
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "image", image_id
    )
    args = (ctx.db, ws, image_id, principal.user_id)
    return ok(await run_in_threadpool(annotations.create_verification, *args), 201)


@router.delete("/verification/{verification_id}/", status_code=204, response_class=Response)
async def delete_verification(
    request: Request,
    verification_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "verification",
        verification_id,
        "Verification",
        lambda ctx, ws, oid: annotations.delete_verification(ctx.db, ws, oid),
    )


@router.get("/point/", response_model=Page[PointOut])
def list_points(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    image: str | None = Query(None, description="Only points about this image."),
    name: str | None = Query(None, description="Only points of this name."),
    page: str | None = PAGE_QUERY,
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    ctx = get_ctx(request)
    image_id = check_uuid("image", image) if image else None
    ws = ctx.resolve_workspace_of(principal, workspace, "image", image_id or "")
    pr = page_request(request, ctx.settings)
    count, results = annotations.point_page(ctx.db, ws, pr, image=image_id, name=name)
    return ok(page_body(request, pr, count, results))


@router.post(
    "/point/",
    status_code=201,
    response_model=PointOut,
    openapi_extra=body_doc(PointCreate),
)
async def create_point(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, PointCreate)
    body = parse(PointCreate, data)
    image_id = check_uuid("image", body.image) if body.image else None
    ws = await run_in_threadpool(
        ctx.resolve_workspace_of, principal, body_workspace(request, data), "image", image_id or ""
    )
    try:
        data_json = json.dumps(
            body.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (ValueError, TypeError) as exc:
        raise field_error("data", f"Send a JSON value: {exc}.") from exc
    args = (ctx.db, ws, image_id, body.name, data_json)
    return ok(await run_in_threadpool(annotations.create_point, *args), 201)


@router.get("/point/{point_id}/", response_model=PointOut)
def get_point(
    request: Request,
    point_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    pid = path_id(point_id, "Point")
    ws = ctx.resolve_workspace_of(principal, workspace, "point", pid)
    return ok(annotations.get_point(ctx.db, ws, pid))


@router.delete("/point/{point_id}/", status_code=204, response_class=Response)
async def delete_point(
    request: Request,
    point_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    return await delete_by_id(
        request,
        principal,
        workspace,
        "point",
        point_id,
        "Point",
        lambda ctx, ws, oid: annotations.delete_point(ctx.db, ws, oid),
    )
