"""``recognition/v2/model/`` and ``classify/``.

Models are the trained versions of a task. Training and classification compute are not
in this build: ``train/`` and ``classify/`` answer 501 and never fake a result.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import queries
from .auth import authenticate
from .bodies import body_doc, check_uuid, parse, read_body
from .common import body_workspace, no_content, ok, path_id
from .context import Principal, ServerContext, get_ctx
from .errors import bad_request, detail, not_found
from .pagination import check_page, page_body, page_request
from .schemas import ClassifyRequest, Detail, ModelOut, Page

router = APIRouter(prefix="/recognition/v2", tags=["models"])

CLASSIFY_UNAVAILABLE = "classification is not available in this build of localrepo-server yet"
_MODEL_FROM = "models m JOIN tasks t ON t.id = m.task_id"


@router.get("/model/", response_model=Page[ModelOut])
def list_models(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    task: str | None = Query(None, description="Only the models of this task."),
    page: int = Query(1, ge=1),
    page_size: int | None = Query(None, ge=1),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    pr = page_request(request, ctx.settings)
    cond = "t.workspace_id = :ws"
    params: dict[str, object] = {"ws": ws}
    if task:
        cond += " AND m.task_id = :task"
        params["task"] = check_uuid("task", task)
    with ctx.db.read() as session:
        conn = session.connection()
        count = conn.execute(
            text(f"SELECT count(*) FROM {_MODEL_FROM} WHERE {cond}"), params
        ).scalar_one()
        check_page(pr, count)
        rows = conn.execute(
            text(
                f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} WHERE {cond} "
                "ORDER BY m.task_id, m.version LIMIT :lim OFFSET :off"
            ),
            {**params, "lim": pr.size, "off": pr.offset},
        ).all()
    return ok(page_body(request, pr, count, [queries.model_dict(r) for r in rows]))


def _get_model(ctx: ServerContext, ws: str, model_id: str) -> dict[str, object]:
    with ctx.db.read() as session:
        row = (
            session.connection()
            .execute(
                text(
                    f"SELECT {queries.MODEL_COLUMNS} FROM {_MODEL_FROM} "
                    "WHERE m.id = :id AND t.workspace_id = :ws"
                ),
                {"id": model_id, "ws": ws},
            )
            .first()
        )
    if row is None:
        raise not_found("Model not found.")
    return queries.model_dict(row)


@router.get("/model/{model_id}/", response_model=ModelOut)
def get_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    return ok(_get_model(ctx, ws, path_id(model_id, "Model")))


def _delete_model(ctx: ServerContext, ws: str, model_id: str) -> None:
    with ctx.db.write() as session:
        conn = session.connection()
        row = conn.execute(
            text(
                "SELECT m.task_id, m.version, t.production_version FROM models m "
                "JOIN tasks t ON t.id = m.task_id WHERE m.id = :id AND t.workspace_id = :ws"
            ),
            {"id": model_id, "ws": ws},
        ).first()
        if row is None:
            raise not_found("Model not found.")
        if row[1] == row[2]:
            raise bad_request("This model is the task's production version; it cannot be deleted.")
        conn.execute(
            text("UPDATE training_jobs SET model_id = NULL WHERE model_id = :id"), {"id": model_id}
        )
        conn.execute(text("DELETE FROM models WHERE id = :id"), {"id": model_id})


@router.delete("/model/{model_id}/", status_code=204, response_class=Response)
def delete_model(
    request: Request,
    model_id: str,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
) -> Response:
    ctx = get_ctx(request)
    ws = ctx.resolve_workspace(principal, workspace)
    _delete_model(ctx, ws, path_id(model_id, "Model"))
    return no_content()


@router.post(
    "/classify/", response_model=Detail, openapi_extra=body_doc(ClassifyRequest, required=False)
)
async def classify(request: Request, principal: Principal = Depends(authenticate)) -> Response:
    ctx = get_ctx(request)
    data, _ = await read_body(request, ClassifyRequest)
    parse(ClassifyRequest, data)
    await run_in_threadpool(ctx.resolve_workspace, principal, body_workspace(request, data))
    raise detail(501, CLASSIFY_UNAVAILABLE)
