"""Pure: a name the user typed, checked against the names that exist.

Every option that names a task (`--task` for a task of this repository, `--remote-task`
for one of the remote) goes through here, so an unknown name reads the same everywhere:

    --task: no task 'pest' in this repository; did you mean 'pets'? (tasks: birds, pets)

Contract:
- `close_to(name, names)`: the existing names closest to `name`, best first (the same
  name in another case first, then difflib's close matches, cutoff 0.6), at most three;
- `unknown_name(...)`: the `LocalrepoError` for a name that is not there, exit code 2
  (a usage error), naming the option, the close matches and every name (or "there are
  none");
- `check_name(...)`: `name` when it is one of `names`, else that error.
No I/O: the callers read the names (the catalog, the remote) and raise what this returns.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from localrepo.errors import EXIT_USAGE, LocalrepoError

MAX_SUGGESTIONS = 3
MAX_LISTED = 20  # a remote may have many tasks: list this many, then say how many more


def close_to(name: str, names: Sequence[str]) -> list[str]:
    """The names in `names` closest to `name`, best first."""
    folded = name.casefold()
    same_case = [n for n in names if n.casefold() == folded and n != name]
    matches = difflib.get_close_matches(name, list(names), n=MAX_SUGGESTIONS, cutoff=0.6)
    out: list[str] = []
    for candidate in (*same_case, *matches):
        if candidate != name and candidate not in out:
            out.append(candidate)
    return out[:MAX_SUGGESTIONS]


def _listed(names: Sequence[str]) -> str:
    ordered = sorted(set(names))
    shown = ", ".join(ordered[:MAX_LISTED])
    more = len(ordered) - MAX_LISTED
    return f"{shown}, and {more} more" if more > 0 else shown


def unknown_name(
    option: str, name: str, names: Sequence[str], *, kind: str = "task", where: str = ""
) -> LocalrepoError:
    """The error for `name`, given with `option`, which is none of `names` (`where` says
    where they were looked for: "in this repository", "on http://...")."""
    place = f" {where}" if where else ""
    text = f"{option}: no {kind} '{name}'{place}"
    guesses = close_to(name, names)
    if guesses:
        text += "; did you mean " + " or ".join(f"'{g}'" for g in guesses) + "?"
    text += f" ({kind}s: {_listed(names)})" if names else f" (there are no {kind}s)"
    return LocalrepoError(text, exit_code=EXIT_USAGE)


def check_name(
    option: str, name: str, names: Sequence[str], *, kind: str = "task", where: str = ""
) -> str:
    """`name` if it is one of `names`; else `unknown_name`'s error is raised."""
    if name in names:
        return name
    raise unknown_name(option, name, names, kind=kind, where=where)
