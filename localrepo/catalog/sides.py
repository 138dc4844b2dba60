"""The values of the `state` column of `image_label` and `task_label` (design section 1):
each row belongs to one side of the three-way merge, LOCAL (the folders) or REMOTE (the
server), or to their merge base, SYNCED. Importable without the ORM."""

LOCAL = "local"  # last observed on disk
REMOTE = "remote"  # last listed from the API
SYNCED = "synced"  # the merge base: what both sides last agreed on
STATES = (LOCAL, REMOTE, SYNCED)
