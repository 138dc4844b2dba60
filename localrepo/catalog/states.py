"""The three states of every synced entity (design section 1), importable without the ORM."""

LOCAL = "local"  # last observed on disk
REMOTE = "remote"  # last listed from the API
SYNCED = "synced"  # the merge base: what both sides last agreed on
STATES = (LOCAL, REMOTE, SYNCED)
