"""The examples that end each ``localrepo-server`` command's help (clig.dev: lead with
examples). Kept apart from the parser (server/cli.py) so that each command's options stay
readable; `add_examples` sets them on the built parser, and tests/cli/test_help_examples.py
checks that every example parses."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "localrepo-server init --data ~/localrepo-data",
        "localrepo-server serve --data ~/localrepo-data --port 8000",
    ),
    "init": ("localrepo-server init --data ~/localrepo-data",),
    "serve": (
        "localrepo-server serve --data ~/localrepo-data --port 8000",
        "localrepo-server serve --dev --port 8000    # a user 'dev' and a token, for a try",
        "localrepo-server serve --workers 4 --database-url postgresql+psycopg://u:pw@db/repo",
    ),
    "user": ("localrepo-server user create alice --ask-password", "localrepo-server user list"),
    "user create": (
        "localrepo-server user create alice",
        "localrepo-server user create alice --ask-password    # she signs in on the web too",
    ),
    "user set-password": (
        "localrepo-server user set-password alice",
        'echo "$PASSWORD" | localrepo-server user set-password alice --password-stdin',
    ),
    "user list": ("localrepo-server user list --data ~/localrepo-data",),
    "token": ("localrepo-server token create alice --name laptop",),
    "token create": ("localrepo-server token create alice --name laptop",),
    "token list": ("localrepo-server token list alice",),
    "token revoke": ("localrepo-server token revoke TOKEN_ID    # an id from 'token list'",),
    "workspace": ("localrepo-server workspace create team --user alice",),
    "workspace create": ("localrepo-server workspace create team --user alice",),
    "workspace list": ("localrepo-server workspace list --user alice",),
    "worker": ("localrepo-server worker --data ~/localrepo-data    # one more training worker",),
    "fsck": (
        "localrepo-server fsck --data ~/localrepo-data",
        "localrepo-server fsck --data ~/localrepo-data --grace-seconds 0    # no server runs",
    ),
    "backup": ("localrepo-server backup --data ~/localrepo-data /mnt/backups/localrepo-monday",),
    "restore": ("localrepo-server restore --data ~/localrepo-data /mnt/backups/localrepo-monday",),
}


def _text(lines: tuple[str, ...]) -> str:
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Append each command's examples to its help epilog, the parser's own first."""
    parser.epilog = "\n\n".join(p for p in (parser.epilog, _text(EXAMPLES[path])) if p)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:  # argparse has no public walk of its subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.prog.split()[-1] == name:  # aliases share the parser
                    add_examples(sub, f"{path} {name}".strip())
