"""Users, API tokens and workspaces: what the ``user``/``token``/``workspace`` commands
do, and the look-ups of every request (a token's user, a workspace's owner)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from . import revocations
from .db import Database
from .queries import json_fragment
from .tables import ApiToken, User, WebSession, Workspace

DEFAULT_WORKSPACE_NAME = "Default"
_USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


class AccountError(Exception):
    """A user-facing account problem (bad name, missing user, duplicate...)."""


@dataclass(frozen=True)
class NewToken:
    id: str
    user_id: str
    username: str
    token: str  # the plaintext, shown once


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> str:
    # 40 hex characters, like a DRF token (the official SDK sends "Token <t>" for < 70 chars).
    return secrets.token_hex(20)


def _check_username(name: str) -> str:
    if not _USERNAME_RE.match(name):
        raise AccountError(f"invalid user name {name!r}: use 1-150 letters, digits and . @ + - _")
    return name


def create_user(db: Database, username: str) -> User:
    """Create a user and its default workspace."""
    _check_username(username)
    try:
        with db.write() as session:
            user = User(username=username)
            session.add(user)
            session.flush()
            session.add(Workspace(owner_id=user.id, name=DEFAULT_WORKSPACE_NAME, is_default=True))
    except IntegrityError as exc:
        raise AccountError(f"user {username!r} already exists") from exc
    return user


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise AccountError(f"no user named {username!r}")
    return user


def ensure_user(db: Database, username: str) -> User:
    with db.read() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is not None:
        return user
    try:
        return create_user(db, username)
    except AccountError:
        # Created concurrently by someone else: fine.
        with db.read() as session:
            return get_user(session, username)


def set_password(db: Database, username: str, password_hash: str | None) -> None:
    """Store a user's password hash (None: no web sign-in). The user's web sessions end:
    a new password locks out whoever knew the old one."""
    with db.write() as session:
        user = get_user(session, username)
        user.password_hash = password_hash
        session.add(user)
        session.execute(
            WebSession.__table__.delete().where(WebSession.user_id == user.id)  # type: ignore[attr-defined]
        )


def sign_in_record(db: Database, username: str) -> tuple[str, str | None] | None:
    """(user id, password hash) of a user, by name; None when there is no such user."""
    with db.read() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    return None if user is None else (user.id, user.password_hash)


def create_token(db: Database, username: str, name: str = "") -> NewToken:
    token = generate_token()
    with db.write() as session:
        user = get_user(session, username)
        row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token))
        session.add(row)
        session.flush()
        return NewToken(id=row.id, user_id=user.id, username=user.username, token=token)


def list_tokens(db: Database, username: str) -> list[ApiToken]:
    with db.read() as session:
        user = get_user(session, username)
        return list(
            session.exec(
                select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created)
            )
        )


def revoke_token(db: Database, token_id: str) -> None:
    with db.write() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise AccountError(f"no token with id {token_id!r}")
        session.delete(row)
        revocations.announce(db, session)


def create_workspace(db: Database, name: str, username: str) -> Workspace:
    name = name.strip()
    if not name or len(name) > 255:
        raise AccountError("a workspace name must have 1-255 characters")
    if name == DEFAULT_WORKSPACE_NAME:
        raise AccountError(
            f"{DEFAULT_WORKSPACE_NAME!r} is the name of every user's default workspace"
        )
    try:
        with db.write() as session:
            user = get_user(session, username)
            ws = Workspace(owner_id=user.id, name=name)
            session.add(ws)
    except IntegrityError as exc:
        raise AccountError(f"user {username!r} already has a workspace named {name!r}") from exc
    return ws


def list_workspaces(db: Database, username: str) -> list[Workspace]:
    with db.read() as session:
        user = get_user(session, username)
        return list(
            session.exec(
                select(Workspace)
                .where(Workspace.owner_id == user.id)
                .order_by(Workspace.created, Workspace.id)
            )
        )


def list_users(db: Database) -> list[User]:
    with db.read() as session:
        return list(session.exec(select(User).order_by(User.created)))


# ---- per request ---------------------------------------------------------------------------

_TOKEN_SQL = text(
    "SELECT t.id, t.user_id, w.id FROM api_tokens t "
    "JOIN workspaces w ON w.owner_id = t.user_id AND w.is_default = :true "
    "WHERE t.token_hash = :h"
)
_WORKSPACE_SQL = text("SELECT id FROM workspaces WHERE id = :id AND owner_id = :owner")
# The workspace holding an object of the caller's, by the object's id (by-id routes
# named without a workspace: ``workspace_holding``).
_HOLDER_SQL = {
    kind: text(
        f"SELECT o.workspace_id FROM {table} o JOIN workspaces w ON w.id = o.workspace_id "
        "WHERE o.id = :id AND w.owner_id = :owner"
    )
    for kind, table in (("image", "images"), ("task", "tasks"), ("label", "labels"))
}
_HOLDER_SQL["point"] = text(
    "SELECT o.workspace_id FROM points o JOIN workspaces w ON w.id = o.workspace_id "
    "WHERE o.id = :id AND w.owner_id = :owner"
)
_HOLDER_SQL["verification"] = text(
    "SELECT i.workspace_id FROM verifications v JOIN images i ON i.id = v.image_id "
    "JOIN workspaces w ON w.id = i.workspace_id WHERE v.id = :id AND w.owner_id = :owner"
)
_HOLDER_SQL["model"] = text(
    "SELECT t.workspace_id FROM models m JOIN tasks t ON t.id = m.task_id "
    "JOIN workspaces w ON w.id = t.workspace_id WHERE m.id = :id AND w.owner_id = :owner"
)
_WORKSPACES_SQL = text(
    "SELECT id, name, created, owner_id, meta_data, is_default FROM workspaces "
    "WHERE owner_id = :u ORDER BY is_default DESC, created, id"
)


def token_owner(db: Database, token_hash: str) -> Sequence[Any] | None:
    """(token id, user id, default workspace id) of a token, by its hash; None if unknown."""
    with db.read() as session:
        return session.connection().execute(_TOKEN_SQL, {"h": token_hash, "true": True}).first()


def owns_workspace(db: Database, user_id: str, workspace_id: str) -> bool:
    with db.read() as session:
        found = (
            session.connection()
            .execute(_WORKSPACE_SQL, {"id": workspace_id, "owner": user_id})
            .first()
        )
    return found is not None


def workspace_holding(db: Database, user_id: str, kind: str, object_id: str) -> str | None:
    """The id of the workspace of ``user_id`` that holds the ``kind`` ("image", "task",
    "label", "model", "point" or "verification") with id ``object_id``; None when no
    workspace of theirs does."""
    with db.read() as session:
        found = (
            session.connection()
            .execute(_HOLDER_SQL[kind], {"id": object_id, "owner": user_id})
            .first()
        )
    return None if found is None else str(found[0])


def workspace_dicts(db: Database, user_id: str) -> list[dict[str, Any]]:
    """The user's workspaces as ``account/v2/workspace/`` answers them, default first."""
    with db.read() as session:
        rows = session.connection().execute(_WORKSPACES_SQL, {"u": user_id})
        return [
            {
                "id": r[0],
                "name": r[1],
                "created": r[2],
                "owner": r[3],
                "meta_data": json_fragment(r[4]),
                "is_default": bool(r[5]),
            }
            for r in rows
        ]


def user_dict(db: Database, user_id: str, default_workspace: str) -> dict[str, Any]:
    """The user as ``account/v2/user/`` answers it, with their workspaces."""
    with db.read() as session:
        user = session.get(User, user_id)
    assert user is not None  # the caller's token was just checked
    return {
        "id": user.id,
        "username": user.username,
        "email": "",
        "first_name": "",
        "last_name": "",
        "date_joined": user.created,
        "default_workspace": default_workspace,
        "workspaces": workspace_dicts(db, user_id),
    }


@dataclass(frozen=True)
class WorkspaceSummary:
    id: str
    name: str
    is_default: bool
    tasks: int


_SUMMARIES_SQL = text(
    "SELECT w.id, w.name, w.is_default, COUNT(t.id) FROM workspaces w "
    "LEFT JOIN tasks t ON t.workspace_id = w.id WHERE w.owner_id = :u "
    "GROUP BY w.id, w.name, w.is_default, w.created ORDER BY w.is_default DESC, w.created, w.id"
)


def workspace_summaries(db: Database, user_id: str) -> list[WorkspaceSummary]:
    """The user's workspaces with their number of tasks, default first (the web home)."""
    with db.read() as session:
        rows = session.connection().execute(_SUMMARIES_SQL, {"u": user_id})
        return [WorkspaceSummary(r[0], r[1], bool(r[2]), int(r[3])) for r in rows]


def revoke_user_token(db: Database, user_id: str, token_id: str) -> str | None:
    """Revoke one of ``user_id``'s own tokens; its sha256 (to forget it in caches), or
    None when the user has no such token (another user's is not theirs to revoke)."""
    with db.write() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != user_id:
            return None
        session.delete(row)
        revocations.announce(db, session)
        return row.token_hash
