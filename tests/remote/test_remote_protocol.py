"""`RemoteAPI` (remote/api.py), the client the sync side is typed with: RecognitionClient
and the test fake implement every method with the Protocol's signature, and the sync
side calls exactly the Protocol's methods on a client."""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.fakeremote import UnreachableRemote

import localrepo
from localrepo.remote import RemoteAPI as ExportedRemoteAPI
from localrepo.remote.api import RemoteAPI
from localrepo.remote.client import RecognitionClient

PACKAGE = Path(localrepo.__file__).parent
# Where a client is called (a `client` variable or `self.client`). Closing is left out
# of the Protocol: whoever makes a client closes it.
CALLERS = [
    "sync/engine.py",
    "sync/snapshot.py",
    "sync/changefeed.py",  # the change feed, against the copy of the last listing
    "sync/quiet_check.py",
    "sync/binding.py",
    "sync/twins.py",
    "sync/verify.py",
    "sync/remote_side.py",  # the executor's requests (sync/execute.py passes the client on)
    "cli/sync_cmds.py",
    "cli/remote_cmds.py",
    "watch/daemon.py",
]
NOT_IN_PROTOCOL = {"close"}


def protocol_methods() -> list[str]:
    return sorted(
        name
        for name, value in vars(RemoteAPI).items()
        if callable(value) and not name.startswith("_")
    )


def signature_problems(impl: Callable[..., Any], want: Callable[..., Any]) -> list[str]:
    """How `impl` differs from `want`: parameters (name, kind, position, default,
    annotation), extra parameters without a default, the return annotation."""
    got_sig, want_sig = inspect.signature(impl), inspect.signature(want)
    got_hints, want_hints = typing.get_type_hints(impl), typing.get_type_hints(want)
    got_names = list(got_sig.parameters)
    problems = []
    for index, (name, param) in enumerate(want_sig.parameters.items()):
        have = got_sig.parameters.get(name)
        if have is None:
            problems.append(f"no parameter {name!r}")
            continue
        if have.kind != param.kind:
            problems.append(f"{name!r} is {have.kind.description}, not {param.kind.description}")
        if param.kind is not param.KEYWORD_ONLY and got_names.index(name) != index:
            problems.append(f"{name!r} is at position {got_names.index(name)}, not {index}")
        if have.default != param.default:
            problems.append(f"{name!r} defaults to {have.default!r}, not {param.default!r}")
        if got_hints.get(name) != want_hints.get(name):
            problems.append(f"{name!r} is {got_hints.get(name)}, not {want_hints.get(name)}")
    for name, have in got_sig.parameters.items():
        optional = have.default is not have.empty or have.kind in (
            have.VAR_POSITIONAL,
            have.VAR_KEYWORD,
        )
        if name not in want_sig.parameters and not optional:
            problems.append(f"extra required parameter {name!r}")
    if got_hints.get("return") != want_hints.get("return"):
        problems.append(f"returns {got_hints.get('return')}, not {want_hints.get('return')}")
    return problems


@pytest.mark.parametrize("impl", [RecognitionClient, UnreachableRemote], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", protocol_methods())
def test_implementations_have_every_method_with_the_protocols_signature(
    impl: type, name: str
) -> None:
    method = getattr(impl, name, None)
    assert callable(method), f"{impl.__name__} has no {name}()"
    want = getattr(RemoteAPI, name)
    assert signature_problems(method, want) == [], f"{impl.__name__}.{name}"
    overloads = typing.get_overloads(want)
    got = typing.get_overloads(method)
    assert len(got) == len(overloads), f"{impl.__name__}.{name}: overloads"
    for mine, theirs in zip(got, overloads, strict=True):
        assert signature_problems(mine, theirs) == [], f"{impl.__name__}.{name} (overload)"


def test_the_protocol_is_not_empty_and_the_package_exports_it() -> None:
    assert len(protocol_methods()) >= 20
    assert ExportedRemoteAPI is RemoteAPI


def test_the_checker_sees_a_mismatch() -> None:
    def get_task(self, task: str) -> Any: ...  # renamed parameter, other return

    def find_task(self, name: str, type: str | None = "x", extra: int = 0) -> Any: ...

    assert signature_problems(get_task, RemoteAPI.get_task) == [
        "no parameter 'task_id'",
        "extra required parameter 'task'",
        "returns typing.Any, not <class 'localrepo.remote.models.RemoteTask'>",
    ]
    assert "'type' defaults to 'x', not None" in signature_problems(find_task, RemoteAPI.find_task)


def client_calls(source: str) -> set[str]:
    """The methods called on `client` or `self.client` in a module's source."""
    calls = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "client") or (
            isinstance(owner, ast.Attribute)
            and owner.attr == "client"
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "self"
        ):
            calls.add(node.attr)
    return calls


def test_the_sync_side_calls_exactly_the_protocols_methods() -> None:
    called: dict[str, set[str]] = {}
    for module in CALLERS:
        for name in client_calls((PACKAGE / module).read_text()) - NOT_IN_PROTOCOL:
            called.setdefault(name, set()).add(module)
    missing = sorted(set(called) - set(protocol_methods()))
    assert not missing, f"called on a client but not in RemoteAPI: {missing} ({called})"
    unused = sorted(set(protocol_methods()) - set(called))
    assert not unused, f"in RemoteAPI but called by none of {CALLERS}: {unused}"
