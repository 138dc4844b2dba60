"""The hosted service's documented curl examples for the Recognition v2 API, as data.

Each `Example` records one documented request the way the documentation writes it: the
method, the path with or without its trailing slash, the header names in their written
case (the classify example's lower-case ``authorization``), the raw query string (the
label search's quoted ``search="..."``), the body's form (JSON, urlencoded form fields as
curl's ``-d a=b``, multipart as curl's ``-F``) and its field names, and the status and
body shape the documentation shows. These are our own records of the examples, not the
documentation's text; `section` names the documentation's section.

`provenance` says how the request was known when it was recorded:

- ``"docs text"``: the request line (method, path, headers, body fields) was read in the
  stored copy of the documentation (the "First steps" and "Quickstart" pages, the
  classification page's endpoint list and classify reference, the classify curl example);
- ``"recalled"``: the stored copy gave only the page's opening, so the request was
  reconstructed from the section's description of the route and the SDK's calls; the
  route, method and fields are the documented ones, the exact spelling is not verified.

Values are templates: ``{name}`` is replaced by the replay (test_server_hosted_examples.py)
with what it holds under that name: ``token``, ids saved from earlier answers (``task``,
``label``, ...), ``image_b64`` / ``image_file`` (fresh image bytes each time),
``image_url`` (a stored image's ``img_path``) and ``version`` (the trained version).
A body value that is exactly one template keeps the held value's type (``"{version}"``
becomes an integer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Body forms
NONE = "none"
JSON = "json"  # -d '{...}' with Content-Type: application/json
FORM = "form"  # -d a=b (curl's urlencoded form)
MULTIPART = "multipart"  # -F a=b, -F file=@path

# Shapes: key -> the JSON type(s) the documentation shows for it.
Shape = dict[str, type | tuple[type, ...]]
OPT_STR = (str, type(None))
OPT_INT = (int, type(None))
OPT_NUM = (int, float, type(None))

PAGE: Shape = {"count": int, "next": OPT_STR, "previous": OPT_STR, "results": list}
TASK: Shape = {
    "id": str,
    "name": str,
    "type": str,
    "description": str,
    "production_version": OPT_INT,
    "last_train_status": OPT_STR,
    "created": str,
    "labels": list,
}
LABEL: Shape = {"id": str, "name": str, "type": str, "description": OPT_STR}
IMAGE: Shape = {
    "id": str,
    "img_path": str,
    "thumb_img_path": OPT_STR,
    "img_width": int,
    "img_height": int,
    "meta_data": (dict, type(None)),
    "test_image": bool,
    "labels": list,
}
MODEL: Shape = {
    "id": str,
    "task": str,
    "version": int,
    "train_status": str,
    "accuracy": OPT_NUM,
}
WORKSPACE: Shape = {"id": str, "name": str}
DETAILS: Shape = {
    "id": str,
    "email": str,
    "first_name": str,
    "last_name": str,
    "default_workspace": str,
}
CLASSIFY: Shape = {
    "task_id": str,
    "version": int,
    "status": dict,
    "statistics": dict,
    "records": list,
}
CLASSIFIED_RECORD: Shape = {"best_label": dict, "labels": list, "_status": dict}
STATUS: Shape = {"code": int, "text": str}

AUTH = ("Authorization", "Token {token}")
AUTH_LOWER = ("authorization", "Token {token}")
JSON_TYPE = ("Content-Type", "application/json")


@dataclass(frozen=True)
class Example:
    name: str
    section: str
    provenance: str  # "docs text" or "recalled" (see the module docstring)
    method: str
    path: str  # from the server's root, its trailing slash as documented
    headers: tuple[tuple[str, str], ...] = (AUTH,)
    query: str = ""  # raw, as written after "?"
    body: str = NONE
    fields: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    shape: Shape = field(default_factory=dict)
    item_shape: Shape = field(default_factory=dict)  # each of "results" (or of a list body)
    list_body: bool = False  # the body is a JSON list, not an object
    save: tuple[tuple[str, str], ...] = ()  # (held name, key of the answer)


EXAMPLES: tuple[Example, ...] = (
    # -- First steps / Quickstart ------------------------------------------------------
    Example(
        "first-steps GET with token and JSON content type",
        "First steps: authentication",
        "docs text",
        "GET",
        "recognition/v2/task/",  # the page's placeholder endpoint, here the task list
        headers=(JSON_TYPE, AUTH),
        shape=PAGE,
    ),
    Example(
        "quickstart account details",
        "Quickstart: first API request",
        "docs text",
        "GET",
        "account/v2/details/",
        headers=(AUTH, JSON_TYPE),
        shape=DETAILS,
        save=(("workspace", "default_workspace"),),
    ),
    # -- Workspaces ---------------------------------------------------------------------
    Example(
        "list workspaces",
        "Workspaces",
        "recalled",
        "GET",
        "account/v2/workspace/",
        list_body=True,
        item_shape=WORKSPACE,
    ),
    # -- Task ---------------------------------------------------------------------------
    Example(
        "create task",
        "Task",
        "recalled",
        "POST",
        "recognition/v2/task/",
        headers=(JSON_TYPE, AUTH),
        body=JSON,
        fields={"name": "replayed task", "type": "multi_class", "description": "from docs"},
        status=201,
        shape=TASK,
        save=(("task", "id"),),
    ),
    Example(
        "list tasks (no trailing slash)",
        "All endpoints",
        "docs text",
        "GET",
        "recognition/v2/task",
        shape=PAGE,
        item_shape=TASK,
    ),
    Example(
        "tasks of a workspace",
        "Workspaces",
        "recalled",
        "GET",
        "recognition/v2/task/",
        query="workspace={workspace}",
        shape=PAGE,
        item_shape=TASK,
    ),
    Example(
        "task detail (no trailing slash)",
        "All endpoints",
        "docs text",
        "GET",
        "recognition/v2/task/{task}",
        shape=TASK,
    ),
    # -- Label --------------------------------------------------------------------------
    Example(
        "create label",
        "Label",
        "recalled",
        "POST",
        "recognition/v2/label/",
        headers=(JSON_TYPE, AUTH),
        body=JSON,
        fields={"name": "{label_name}"},
        status=201,
        shape=LABEL,
        save=(("label", "id"),),
    ),
    Example(
        "list labels",
        "Label",
        "recalled",
        "GET",
        "recognition/v2/label/",
        shape=PAGE,
        item_shape=LABEL,
    ),
    Example(
        "search labels by quoted name",
        "Label",
        "recalled",
        "GET",
        "recognition/v2/label/",
        query='search="{label_name}"',
        shape=PAGE,
        item_shape=LABEL,
    ),
    Example(
        "label detail",
        "Label",
        "recalled",
        "GET",
        "recognition/v2/label/{label}/",
        shape=LABEL,
    ),
    Example(
        "add label to task (form field, no trailing slash)",
        "All endpoints",
        "docs text",
        "POST",
        "recognition/v2/task/{task}/add-label",
        body=FORM,
        fields={"label_id": "{label}"},
    ),
    Example(
        "remove label from task (form field, no trailing slash)",
        "All endpoints",
        "docs text",
        "POST",
        "recognition/v2/task/{task}/remove-label",
        body=FORM,
        fields={"label_id": "{spare_label}"},
    ),
    # -- Training image -----------------------------------------------------------------
    Example(
        "upload training image file",
        "Training image",
        "recalled",
        "POST",
        "recognition/v2/training-image/",
        body=MULTIPART,
        fields={"img_path": "{image_file}"},
        status=201,
        shape=IMAGE,
        save=(("image", "id"), ("image_url", "img_path")),
    ),
    Example(
        "upload training image as base64",
        "Training image",
        "recalled",
        "POST",
        "recognition/v2/training-image/",
        headers=(JSON_TYPE, AUTH),
        body=JSON,
        fields={"base64": "{image_b64}"},
        status=201,
        shape=IMAGE,
        save=(("spare_image", "id"),),
    ),
    Example(
        "list training images",
        "Training image",
        "recalled",
        "GET",
        "recognition/v2/training-image/",
        shape=PAGE,
        item_shape=IMAGE,
    ),
    Example(
        "training image detail",
        "Training image",
        "recalled",
        "GET",
        "recognition/v2/training-image/{image}/",
        shape=IMAGE,
    ),
    Example(
        "add label to image without a workspace (form field, no trailing slash)",
        "Training image",
        "recalled",
        "POST",
        "recognition/v2/training-image/{image}/add-label",
        body=FORM,
        fields={"label_id": "{label}"},
    ),
    Example(
        "remove label from image (form field, no trailing slash)",
        "Training image",
        "recalled",
        "POST",
        "recognition/v2/training-image/{spare_image}/remove-label",
        body=FORM,
        fields={"label_id": "{label}"},
    ),
    Example(
        "delete training image",
        "Training image",
        "recalled",
        "DELETE",
        "recognition/v2/training-image/{spare_image}/",
        status=204,
    ),
    # -- Training and models ------------------------------------------------------------
    Example(
        "train task (trailing slash)",
        "All endpoints",
        "docs text",
        "POST",
        "recognition/v2/task/{task}/train/",
        save=(("model", "model_id"),),
    ),
    Example(
        "list models",
        "Model",
        "recalled",
        "GET",
        "recognition/v2/model/",
        shape=PAGE,
        item_shape=MODEL,
    ),
    Example(
        "model detail",
        "Model",
        "recalled",
        "GET",
        "recognition/v2/model/{model}/",
        shape=MODEL,
    ),
    # -- Classify -----------------------------------------------------------------------
    Example(
        "classify by URL (lower-case authorization, task_id, no trailing slash)",
        "Classify (curl example)",
        "docs text",
        "POST",
        "recognition/v2/classify",
        headers=(JSON_TYPE, AUTH_LOWER),
        body=JSON,
        fields={
            "task_id": "{task}",
            "version": "{version}",
            "descriptor": 0,
            "records": [{"_url": "{image_url}"}],
        },
        shape=CLASSIFY,
        item_shape=CLASSIFIED_RECORD,
    ),
    Example(
        "classify base64 with task",
        "Classify Images",
        "docs text",
        "POST",
        "recognition/v2/classify/",
        headers=(JSON_TYPE, AUTH),
        body=JSON,
        fields={"task": "{task}", "records": [{"_base64": "{image_b64}"}]},
        shape=CLASSIFY,
        item_shape=CLASSIFIED_RECORD,
    ),
    # -- Deleting -----------------------------------------------------------------------
    Example(
        "delete label",
        "Label",
        "recalled",
        "DELETE",
        "recognition/v2/label/{spare_label}/",
        status=204,
    ),
    Example(
        "delete task",
        "Task",
        "recalled",
        "DELETE",
        "recognition/v2/task/{task}/",
        status=204,
    ),
)
