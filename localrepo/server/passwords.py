"""Passwords of the web interface's users: argon2id hashes (argon2-cffi's defaults, the
RFC 9106 low-memory profile: memory-hard, so a stolen database is slow to brute-force).

Pure apart from the hashing itself. A password is never logged, printed or kept: only
its hash is stored (``users.password_hash``, see server/data/accounts.py).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing a megabyte on every sign-in attempt would be a cheap DoS

_HASHER = PasswordHasher()
# Verified when the user does not exist or has no password, so that a sign-in takes as
# long for an unknown name as for a wrong password (names are not revealed by timing).
_DUMMY_HASH = _HASHER.hash("localrepo: no such user")


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, in words for the user; None when it will do."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password may have at most {MAX_LENGTH} characters"
    if password != password.strip():
        return "a password may not start or end with spaces"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (False when there is none)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        _HASHER.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
