"""The terms of a ``?search=`` query, split as the hosted service's framework splits
them (Django REST framework's ``SearchFilter``), so a query written for it finds the
same things here (docs/api.md, "Search").

Contract: ``search_terms(query)`` answers the terms, in order, none empty. Whitespace
separates terms; a term wrapped in matching double or single quotes is one phrase (its
quotes removed, backslash escapes undone, commas and spaces kept); elsewhere commas
separate terms too. NUL characters are dropped. A result matches when it contains every
term (case-insensitively): that AND is the caller's.
"""

from __future__ import annotations

import re

# Django's smart_split: runs of non-space text, with quoted stretches kept whole.
_SMART_SPLIT = re.compile(
    r"""
    ((?:
        [^\s'"]*
        (?:
            (?:"(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*')
            [^\s'"]*
        )+
    ) | \S+)
    """,
    re.VERBOSE,
)


def _unquote(term: str) -> str:
    quote = term[0]
    return term[1:-1].replace("\\" + quote, quote).replace("\\\\", "\\")


def search_terms(query: str) -> list[str]:
    terms: list[str] = []
    for match in _SMART_SPLIT.finditer(query.replace("\x00", "")):
        term = match.group(0).strip(",")
        if len(term) >= 2 and term[0] in "\"'" and term[0] == term[-1]:
            phrase = _unquote(term)
            if phrase:
                terms.append(phrase)
            continue
        terms.extend(part.strip() for part in term.split(",") if part.strip())
    return terms


def matches(terms: list[str], *fields: str) -> bool:
    """Whether every term is in one of ``fields``, case-insensitively (Unicode case
    folding: SQLite's lower() folds ASCII only)."""
    folded = [f.casefold() for f in fields]
    return all(any(t.casefold() in f for f in folded) for t in terms)
