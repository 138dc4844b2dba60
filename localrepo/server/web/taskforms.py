"""Pure checks of the task and label forms (web/tasks.py is the shell): each answers
the problems as ``{field: message}``, empty when the form is fine. No I/O.

The limits are the API's (server/schemas.py: names 1-255 characters, descriptions up to
10,000). What a page says after an action ("The label ... was attached.") travels in the
redirect's query, signed with the session's secret (``notice_query``/``notice_text``):
a link from elsewhere cannot make the page say something else.

Names are also refused when another task of the workspace (or another label of
the task) already has them, ignoring case: `repo init --task NAME` finds a task by its
name, and a label is a folder of a clone (docs/design.md), so two of the same name
could not be told apart (and are one folder on a case-insensitive disk).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

NAME_MAX = 255
DESCRIPTION_MAX = 10_000
TASK_TYPES = {
    "multi_class": "Categorization (multi_class): one label per image",
    "multi_label": "Tagging (multi_label): any number of tags per image",
    "regression": "Regression: a number per image",
}


def name_problem(name: str, taken: Iterable[str], what: str) -> str:
    """What is wrong with ``name`` for a new (or renamed) ``what``; "" when nothing."""
    if not name:
        return f"Enter the {what}'s name."
    if len(name) > NAME_MAX:
        return f"A {what}'s name may have at most {NAME_MAX} characters."
    wanted = name.casefold()
    if any(other.casefold() == wanted for other in taken):
        return f"There is already a {what} named “{name}” here: choose another name."
    return ""


def task_problems(
    name: str, task_type: str, description: str, taken: Iterable[str]
) -> dict[str, str]:
    problems = {}
    if problem := name_problem(name, taken, "task"):
        problems["name"] = problem
    if task_type not in TASK_TYPES:
        problems["type"] = "Choose one of the task types: " + ", ".join(TASK_TYPES) + "."
    if len(description) > DESCRIPTION_MAX:
        problems["description"] = f"A description may have at most {DESCRIPTION_MAX:,} characters."
    return problems


def delete_problem(typed: str, task_name: str) -> str:
    """The delete form asks for the task's name, typed exactly."""
    if typed.strip() != task_name:
        return f"Type the task's name, “{task_name}”, to delete it."
    return ""


NOTICE_MAX = 600


def _signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:32]


def notice_query(secret: str, text: str) -> dict[str, str]:
    """The query parameters that carry ``text`` to the next page of this session."""
    text = text[:NOTICE_MAX]
    return {"notice": text, "sig": _signature(secret, text)}


def notice_text(secret: str, text: str, signature: str) -> str:
    """``text`` when ``signature`` is this session's for it; "" otherwise."""
    if not secret or not text or len(text) > NOTICE_MAX:
        return ""
    return text if hmac.compare_digest(signature, _signature(secret, text)) else ""
