"""Which workspace a web page may open: the one in its URL, when it is the signed-in
user's. One check for every page (web/tasks.py, images.py, training.py and, through
training.py, evaluation.py), the rule the API applies to a token (context.py, with the
same cache); anything else is a 404, as the API answers for another workspace's object.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..bodies import maybe_uuid
from ..context import ServerContext, get_ctx
from ..data import accounts
from ..data.websessions import SessionUser
from .render import WebError
from .session import require_user

NO_WORKSPACE = "You have no such workspace."


def owned_workspace(ctx: ServerContext, user: SessionUser, workspace_id: str) -> str:
    """The URL's workspace id (normalised), when it is `user`'s; WebError 404 otherwise."""
    ws = maybe_uuid(workspace_id.strip())
    if ws is None:
        raise WebError(404, NO_WORKSPACE)
    if (user.user_id, ws) in ctx.workspace_cache:
        return ws
    if not accounts.owns_workspace(ctx.db, user.user_id, ws):
        raise WebError(404, NO_WORKSPACE)
    ctx.workspace_cache.add((user.user_id, ws))
    return ws


async def workspace_of(request: Request, user: SessionUser, workspace_id: str) -> str:
    """`owned_workspace` off the event loop (it may read the database)."""
    return await run_in_threadpool(owned_workspace, get_ctx(request), user, workspace_id)


@dataclass(frozen=True)
class InWorkspace:
    """A page's signed-in user and the workspace of its URL, known to be theirs."""

    user: SessionUser
    ws: str  # normalised


async def in_workspace(
    request: Request, workspace_id: str, user: SessionUser = Depends(require_user)
) -> InWorkspace:
    """A page's dependency for a URL with ``{workspace_id}``: the signed-in user (else
    off to sign in) and their workspace (else 404). Declared after ``checked_form`` in
    a POST, so a form without its token is refused before anything is looked up."""
    return InWorkspace(user, await workspace_of(request, user, workspace_id))
