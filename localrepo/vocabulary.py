"""The client's shared vocabulary: values that mean the same thing in several modules.

A name belongs here when more than one module of the client must agree on its value
and none of them owns it: the task types and the label type each one implies, the sync
policies, the names localrepo gives its own files and folders in a repository, and the
sizes of requests the remote service limits. One definition, so a comparison reads
``task_type == MULTI_CLASS`` and a misspelt name fails at import instead of comparing
unequal at run time.

What does not belong here:

- values stored in the catalog (the row states, journal statuses, problem kinds): the
  catalog module that owns the table owns them (design section 7);
- a constant only one module uses: it stays in that module;
- the server's names: localrepo/server/ imports nothing of the client, and has its own.

Constants only; this module imports nothing of localrepo, so any module may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

# -- task types (design section 2) --------------------------------------------------------

TaskType = Literal["multi_class", "multi_label", "regression"]
MULTI_CLASS: Final = "multi_class"  # one category per image: <root>/<label>/.../<image>
MULTI_LABEL: Final = "multi_label"  # tags: every tag folder holding the bytes
REGRESSION: Final = "regression"  # a value per image (sidecar), under a value label
TASK_TYPES: Final[tuple[TaskType, ...]] = (MULTI_CLASS, MULTI_LABEL, REGRESSION)

# -- label types: what kind of label a task of each type carries ---------------------------

LabelType = Literal["category", "tag", "value"]
CATEGORY: Final = "category"
TAG: Final = "tag"
VALUE: Final = "value"
LABEL_TYPES: Final[tuple[LabelType, ...]] = (CATEGORY, TAG, VALUE)
LABEL_TYPE: Final[Mapping[str, LabelType]] = MappingProxyType(
    {MULTI_CLASS: CATEGORY, MULTI_LABEL: TAG, REGRESSION: VALUE}
)

# -- sync policies: who settles a conflict (design section 3) -------------------------------

Policy = Literal["manual", "local", "remote"]
POLICY_MANUAL: Final = "manual"  # record it for `repo resolve`
POLICY_LOCAL: Final = "local"  # the folders win
POLICY_REMOTE: Final = "remote"  # the server wins
POLICIES: Final[tuple[Policy, ...]] = (POLICY_MANUAL, POLICY_LOCAL, POLICY_REMOTE)

# -- localrepo's own names in a repository ---------------------------------------------------

STATE_DIR: Final = ".localrepo"  # the state folder at the repository root, never scanned
IGNORE_FILE: Final = ".localrepoignore"  # ignore rules (gitignore syntax), in any folder
TMP_SUFFIX: Final = ".localrepo-tmp"  # the sync engine's temp files: ".<name>.localrepo-tmp"
TRASH_DIR: Final = "trash"  # STATE_DIR/trash/<run>/: files a sync removed
LOGS_DIR: Final = "logs"  # STATE_DIR/logs/: the daemon's log

# -- request sizes ------------------------------------------------------------------------------

CLASSIFY_BATCH: Final = 10  # images per classify/ request: the hosted service's limit

__all__ = [
    "CATEGORY",
    "CLASSIFY_BATCH",
    "IGNORE_FILE",
    "LABEL_TYPE",
    "LABEL_TYPES",
    "LOGS_DIR",
    "MULTI_CLASS",
    "MULTI_LABEL",
    "POLICIES",
    "POLICY_LOCAL",
    "POLICY_MANUAL",
    "POLICY_REMOTE",
    "REGRESSION",
    "STATE_DIR",
    "TAG",
    "TASK_TYPES",
    "TMP_SUFFIX",
    "TRASH_DIR",
    "VALUE",
    "LabelType",
    "Policy",
    "TaskType",
]
