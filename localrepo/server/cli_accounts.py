"""`localrepo-server user|token|workspace`: accounts from the command line (the
parsers and what each command does; server/cli.py opens the database and reports
``accounts.AccountError``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .data import accounts
from .data.db import Database


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The `user`, `token` and `workspace` commands; ``common`` adds the data options."""
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    p = user.add_parser(
        "create", aliases=["add"], help="create a user (with its Default workspace)"
    )
    common(p)
    p.add_argument("name")
    _password_options(p, optional=True)
    p = user.add_parser(
        "set-password", help="set a user's password for the web interface (asked twice)"
    )
    common(p)
    p.add_argument("name")
    _password_options(p, optional=False)
    p = user.add_parser("list", help="list users")
    common(p)

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    p = token.add_parser("create", help="create a token for a user and print it (once)")
    common(p)
    p.add_argument("user")
    p.add_argument("--name", default="", help="a note to recognise the token by")
    p = token.add_parser("list", help="list a user's tokens (ids and names, never the tokens)")
    common(p)
    p.add_argument("user")
    p = token.add_parser("revoke", help="revoke a token by its id")
    common(p)
    p.add_argument("token_id")

    ws = sub.add_parser("workspace", help="manage workspaces").add_subparsers(
        dest="action", required=True
    )
    p = ws.add_parser("create", help="create a workspace for a user")
    common(p)
    p.add_argument("name")
    p.add_argument("--user", required=True)
    p = ws.add_parser("list", help="list a user's workspaces")
    common(p)
    p.add_argument("--user", required=True)


def _password_options(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    # Never the password itself on the command line: other users see it in `ps`.
    if optional:
        parser.add_argument(
            "--ask-password",
            action="store_true",
            help="ask for a password for the web interface (twice, not echoed)",
        )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead",
    )


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password the options ask for (None: none asked for). Raises
    AccountError when it will not do; never shows it."""
    import getpass

    from .passwords import password_problem

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif getattr(args, "ask_password", True):
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise accounts.AccountError("the two passwords differ; nothing was changed")
    else:
        return None
    problem = password_problem(password)
    if problem:
        raise accounts.AccountError(f"{problem}; nothing was changed")
    return password


def _set_password_command(db: Database, args: argparse.Namespace) -> None:
    if accounts.sign_in_record(db, args.name) is None:  # before asking for a password
        raise accounts.AccountError(f"no user named {args.name!r}")
    password = _read_password(args)
    if password is None:  # pragma: no cover - set-password always reads one
        raise AssertionError(args)
    _set_password(db, args.name, password)
    print(f"set the web interface password of {args.name!r}; their web sessions ended")


def _set_password(db: Database, username: str, password: str) -> None:
    from .passwords import hash_password

    accounts.set_password(db, username, hash_password(password))


def run(db: Database, args: argparse.Namespace) -> None:
    """Carry out the account command ``args``; raises ``accounts.AccountError``."""
    if args.command == "user" and args.action in ("create", "add"):
        password = _read_password(args)
        user = accounts.create_user(db, args.name)
        print(f"created user {user.username!r} (id {user.id}) with workspace 'Default'")
        if password is not None:
            _set_password(db, args.name, password)
            print(f"set the web interface password of {args.name!r}")
    elif args.command == "user" and args.action == "set-password":
        _set_password_command(db, args)
    elif args.command == "user" and args.action == "list":
        for user in accounts.list_users(db):
            print(f"{user.id}  {user.username}  {user.created}")
    elif args.command == "token" and args.action == "create":
        new = accounts.create_token(db, args.user, args.name)
        print(
            f"token for {new.username!r} (id {new.id}); it is shown only this once:",
            file=sys.stderr,
        )
        print(new.token)
    elif args.command == "token" and args.action == "list":
        for tok in accounts.list_tokens(db, args.user):
            print(f"{tok.id}  {tok.created}  {tok.name}")
    elif args.command == "token" and args.action == "revoke":
        accounts.revoke_token(db, args.token_id)
        print(f"revoked token {args.token_id}")
    elif args.command == "workspace" and args.action == "create":
        ws = accounts.create_workspace(db, args.name, args.user)
        print(f"created workspace {ws.name!r} for {args.user!r}: {ws.id}")
    elif args.command == "workspace" and args.action == "list":
        for w in accounts.list_workspaces(db, args.user):
            flag = "  (default)" if w.is_default else ""
            print(f"{w.id}  {w.name}{flag}")
    else:  # pragma: no cover - argparse only lets known actions through
        raise AssertionError(args)
