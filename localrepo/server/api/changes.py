"""``recognition/v2/training-image/changes/``: the change feed, this server's extension
(docs/api.md, "Change feed"; data/changes.py). Off with ``--compat hosted``: then a
404, as the hosted service answers, and clients list in full."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ..bodies import uuid_list
from ..context import Principal, get_ctx
from ..data import changes
from ..errors import not_found
from ..pagination import PAGE_SIZE_QUERY, page_request
from .auth import authenticate
from .common import media_base, ok

router = APIRouter(prefix="/recognition/v2", tags=["training images"])


@router.get("/training-image/changes/")
def image_changes(
    request: Request,
    principal: Principal = Depends(authenticate),
    workspace: str | None = Query(None),
    since: str | None = Query(
        None, description="The cursor of the last answer; omit it to get the cursor of now."
    ),
    labels: list[str] | None = Query(
        None, description="Only images with any of these labels (as the listing's filter)."
    ),
    page_size: str | None = PAGE_SIZE_QUERY,
) -> Response:
    """The images changed since the cursor ``since``: ``results`` as the listing shows
    them, ``removed`` the ids of those deleted or no longer matching ``labels``, the
    ``cursor`` to ask from next and ``more`` (ask again at once). A cursor of another
    workspace or server, or of a restored database, is a 410: list in full."""
    ctx = get_ctx(request)
    if not ctx.settings.change_feed:
        raise not_found("Not found.")
    ws = ctx.resolve_workspace(principal, workspace)
    wanted = uuid_list("labels", request.query_params.getlist("labels"))
    size = page_request(request, ctx.settings).size
    page = changes.change_page(ctx.db, ws, since, wanted, size, media_base(request))
    return ok(
        {"cursor": page.cursor, "more": page.more, "results": page.results, "removed": page.removed}
    )
