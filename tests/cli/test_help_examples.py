"""Every command's `--help` ends with examples (clig.dev), and every example parses.

Walks the whole `repo` command tree (the lazily loaded commands too) and every
`localrepo-server` subcommand: each help text must end with an "Examples:" block whose
lines are all examples of that command (its full name, after the program's global
options), and each example's arguments must be accepted by that command's own parser, so
an example cannot drift from the options it shows.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import click
import pytest

from localrepo.cli.main import cli as repo_cli
from localrepo.server.cli import build_parser

REPO_GLOBAL_OPTIONS = {"-C": 1, "-v": 0, "--verbose": 0, "-q": 0, "--quiet": 0}


def _click_commands(
    group: click.Group, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group, info_name=path[-1])
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if command.hidden:
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _click_commands(command, (*path, name))


def _subparsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:  # argparse offers no public walk of its subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.split()[-1] != name:
                    continue  # an alias: its parser is checked under its own name
                yield (*path, name), sub
                yield from _subparsers(sub, (*path, name))


REPO = [(("repo",), repo_cli), *_click_commands(repo_cli, ("repo",))]
SERVER_PARSER = build_parser()
SERVER = [
    (("localrepo-server",), SERVER_PARSER),
    *_subparsers(SERVER_PARSER, ("localrepo-server",)),
]


def _examples(text: str) -> list[str]:
    """The lines after the last 'Examples:', which must be the end of the help."""
    _, sep, tail = text.rpartition("Examples:")
    assert sep, "no 'Examples:' section"
    return [line.strip() for line in tail.splitlines() if line.strip()]


def _arguments(example: str, path: tuple[str, ...]) -> list[str]:
    """The example's words after the command's name (and the program's global options);
    a pipe's left side and a trailing # comment are not the command's."""
    words = shlex.split(example, comments=True)
    if "|" in words:
        words = words[len(words) - words[::-1].index("|") :]
    assert words[0] == path[0], f"{example!r} does not run {path[0]}"
    rest = words[1:]
    while rest and rest[0] in REPO_GLOBAL_OPTIONS:
        rest = rest[1 + REPO_GLOBAL_OPTIONS[rest[0]] :]
    names = list(path[1:])
    assert rest[: len(names)] == names, f"{example!r} is not an example of {' '.join(path)}"
    return rest[len(names) :]


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(path) for path, _ in REPO + SERVER}
    for expected in ("repo sync", "repo task add", "repo models promote", "localrepo-server serve"):
        assert expected in names


def test_an_example_of_another_command_is_caught() -> None:
    with pytest.raises(AssertionError):
        _arguments("repo push -n", ("repo", "sync"))
    assert _arguments("repo -C ~/pets sync -n  # a dry run", ("repo", "sync")) == ["-n"]


@pytest.mark.parametrize("path,command", REPO, ids=[" ".join(p) for p, _ in REPO])
def test_repo_help_ends_with_examples_that_parse(
    path: tuple[str, ...], command: click.Command
) -> None:
    ctx = click.Context(command, info_name=" ".join(path), terminal_width=100)
    examples = _examples(command.get_help(ctx))
    assert examples, f"{' '.join(path)}: the Examples section is empty"
    for example in examples:
        rest = _arguments(example, path)
        if isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
            continue  # a subcommand's example: parsed under that subcommand
        command.make_context(" ".join(path), rest)  # raises on an option it does not have


@pytest.mark.parametrize("path,parser", SERVER, ids=[" ".join(p) for p, _ in SERVER])
def test_server_help_ends_with_examples_that_parse(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    examples = _examples(parser.format_help())
    assert examples, f"{' '.join(path)}: the Examples section is empty"
    is_group = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    for example in examples:
        rest = _arguments(example, path)
        if not is_group:
            parser.parse_args(rest)  # exits (SystemExit) on an option it does not have
