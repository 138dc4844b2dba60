"""python -m localrepo: the `repo` command."""

from localrepo.cli.entry import main

main()
