"""Replays the hosted service's documented curl examples (tests/server/hosted_examples.py)
against a real localrepo-server, as written: header names in their written case, paths
with or without their trailing slash, the quoted label search, JSON, form and multipart
bodies. Each answer's status and body shape (keys and types) must be the documented one
(issue 21, acceptance).

One server for the whole sequence, started with ``--allow-private-urls`` so that the
classify example's ``_url`` can name an image this server itself serves (a public URL
would need the network). Ids created by earlier examples are substituted into later ones;
what the examples do not do themselves (enough images per label to train) is prepared
with plain API calls between them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from support.imagegen import class_image

from .helpers import attach, b64, make_label, upload
from .hosted_examples import (
    EXAMPLES,
    FORM,
    JSON,
    MULTIPART,
    STATUS,
    Example,
    Shape,
)
from .trainhelp import finished_model

TEMPLATE = re.compile(r"\{(\w+)\}")


class Replay:
    """What the replay holds (token, ids, fresh images) and how it sends an example."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.held: dict[str, Any] = {"token": token, "label_name": "replayed circle"}
        self._seeds: Iterator[int] = itertools.count(1)
        # What curl sends besides the example's own headers (httpx would say python-httpx).
        self.http = httpx.Client(
            headers={"User-Agent": "curl/8.5.0", "Accept": "*/*"}, timeout=60.0
        )
        self.api = httpx.Client(
            base_url=base_url + "recognition/v2/",
            headers={"Authorization": f"Token {token}"},
            timeout=60.0,
        )

    def close(self) -> None:
        self.http.close()
        self.api.close()

    def fresh_image(self) -> bytes:
        return class_image("circle", 100 + next(self._seeds))

    def _value(self, name: str) -> Any:
        if name == "image_b64":
            return b64(self.fresh_image())
        return self.held[name]

    def fill(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if not isinstance(value, str):
            return value
        whole = TEMPLATE.fullmatch(value)
        if whole:  # a lone template keeps the held value's type
            return self._value(whole.group(1))
        return TEMPLATE.sub(lambda m: str(self._value(m.group(1))), value)

    def send(self, ex: Example) -> httpx.Response:
        url = self.base_url + self.fill(ex.path)
        if ex.query:  # httpx percent-encodes the quotes and spaces, as curl must too
            url += "?" + self.fill(ex.query)
        # A list of pairs: httpx sends each name as written (a lower-case
        # `authorization` stays lower-case on the wire).
        headers = [(name, self.fill(value)) for name, value in ex.headers]
        kwargs: dict[str, Any] = {}
        if ex.body == JSON:
            kwargs["content"] = json.dumps(self.fill(ex.fields)).encode()
        elif ex.body == FORM:
            kwargs["data"] = self.fill(ex.fields)
        elif ex.body == MULTIPART:
            files, data = {}, {}
            for key, value in ex.fields.items():
                if value == "{image_file}":  # curl's -F key=@photo.jpg
                    files[key] = ("photo.jpg", self.fresh_image(), "image/jpeg")
                else:
                    data[key] = self.fill(value)
            kwargs["files"] = files
            kwargs["data"] = data
        return self.http.request(ex.method, url, headers=headers, **kwargs)


def shape_problems(body: Any, shape: Shape, where: str) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: a JSON object expected, got {body!r:.200}"]
    problems = []
    for key, types in shape.items():
        if key not in body:
            problems.append(f"{where}: no {key!r} (keys: {sorted(body)})")
        elif not isinstance(body[key], types) or isinstance(body[key], bool) != (
            types is bool or (isinstance(types, tuple) and bool in types)
        ):
            problems.append(f"{where}: {key!r} is {body[key]!r:.80} ({type(body[key]).__name__})")
    return problems


def answer_problems(ex: Example, r: httpx.Response) -> list[str]:
    """How the answer differs from the documented status and body shape."""
    if r.status_code != ex.status:
        return [f"status {r.status_code}, documented {ex.status}: {r.text[:300]}"]
    if ex.status == 204:
        return [] if not r.content else [f"a 204 with a body: {r.text[:200]}"]
    body = r.json()
    problems = []
    if ex.list_body:
        if not isinstance(body, list) or not body:
            return [f"a non-empty JSON list expected, got {body!r:.200}"]
        items = body
    else:
        problems += shape_problems(body, ex.shape, "body")
        if not isinstance(body, dict):
            return problems
        items = body.get("results") or body.get("records") or []
        if "status" in body and "records" in body:  # classify's envelope
            problems += shape_problems(body["status"], STATUS, "status")
    if ex.item_shape:
        if not items:
            problems.append("no item to check the documented item shape against")
        for i, item in enumerate(items):
            problems += shape_problems(item, ex.item_shape, f"item {i}")
    return problems


def prepare_training(rp: Replay) -> None:
    """Before the train example: the documented label has its uploaded image; give it
    four more, and a second label ("square") five, all in the task."""
    api, task = rp.api, rp.held["task"]
    for i in range(4):
        image = upload(api, class_image("circle", 10 + i))
        attach(api, image["id"], rp.held["label"])
    square = make_label(api, "replayed square")
    assert api.post(f"task/{task}/add-label/", json={"label_id": square["id"]}).is_success
    for i in range(5):
        image = upload(api, class_image("square", 10 + i))
        attach(api, image["id"], square["id"])


def prepare_spare_label(rp: Replay) -> None:
    """Before the remove-label example: a label in the task to remove."""
    spare = make_label(rp.api, "replayed spare")
    r = rp.api.post(f"task/{rp.held['task']}/add-label/", json={"label_id": spare["id"]})
    assert r.is_success, r.text
    rp.held["spare_label"] = spare["id"]


def after_training(rp: Replay) -> None:
    model = finished_model(rp.api, rp.held["model"])
    assert model["train_status"] == "TRAINED", model
    rp.held["version"] = model["version"]


BEFORE: dict[str, Callable[[Replay], None]] = {
    "remove label from task (form field, no trailing slash)": prepare_spare_label,
    "train task (trailing slash)": prepare_training,
}
AFTER: dict[str, Callable[[Replay], None]] = {"train task (trailing slash)": after_training}


def meaning_problems(ex: Example, body: Any, rp: Replay) -> list[str]:
    """Beyond the shape: the answers that name something must name the right thing."""
    held = rp.held
    if ex.name == "search labels by quoted name":
        names = [x["name"] for x in body["results"]]
        if names != [held["label_name"]]:
            return [f"the quoted search found {names}, not [{held['label_name']!r}]"]
    if ex.name == "task detail (no trailing slash)" and body["id"] != held["task"]:
        return [f"task detail answered task {body['id']}"]
    if ex.name.startswith("classify"):
        best = [rec.get("best_label", {}).get("name") for rec in body["records"]]
        if best != [held["label_name"]]:
            return [f"classified as {best}, expected [{held['label_name']!r}]"]
    return []


def test_the_documented_examples_replay_as_documented(server_factory) -> None:
    server = server_factory("--allow-private-urls")
    account = server.new_account()
    rp = Replay(server.url, account.token)
    differences: list[str] = []
    try:
        for ex in EXAMPLES:
            if ex.name in BEFORE:
                BEFORE[ex.name](rp)
            r = rp.send(ex)
            problems = answer_problems(ex, r)
            if not problems and ex.status != 204:
                body = r.json()
                problems = meaning_problems(ex, body, rp)
                for held_name, key in ex.save:
                    rp.held[held_name] = body[key]
            if problems:
                differences.append(f"{ex.method} {ex.path} ({ex.name}): " + "; ".join(problems))
                break  # later examples depend on this one's ids
            if ex.name in AFTER:
                AFTER[ex.name](rp)
    finally:
        rp.close()
    assert not differences, "\n".join(differences)
    with account.client() as api:  # the documented deletions took effect
        assert api.get(f"task/{rp.held['task']}/").status_code == 404
        assert api.get(f"label/{rp.held['spare_label']}/").status_code == 404
        assert api.get(f"training-image/{rp.held['spare_image']}/").status_code == 404


def test_the_replay_sends_header_names_and_paths_as_written() -> None:
    """The replay itself must not normalise what it replays: checked against a server
    by httpx's own record of the request it would send."""
    rp = Replay("http://127.0.0.1:9/", "t0ken")
    rp.held.update(task="0f0f0f0f-0000-4000-8000-000000000000", version=1, image_url="x")
    try:
        ex = next(e for e in EXAMPLES if "lower-case authorization" in e.name)
        request = rp.http.build_request(
            ex.method,
            rp.base_url + rp.fill(ex.path),
            headers=[(n, rp.fill(v)) for n, v in ex.headers],
        )
        assert request.url.path == "/recognition/v2/classify"
        assert (b"authorization", b"Token t0ken") in request.headers.raw
        assert rp.fill({"version": "{version}"}) == {"version": 1}
    finally:
        rp.close()


def test_account_details_is_the_caller_as_user_answers_it(live_server, account) -> None:
    """The quickstart's `account/v2/details/` (added for the replay) names the caller
    and their default workspace, exactly as `account/v2/user/` does; another token
    sees its own user."""
    headers = account.headers
    details = httpx.get(account.url + "account/v2/details/", headers=headers).json()
    user = httpx.get(account.url + "account/v2/user/", headers=headers).json()
    assert details == user and details["username"] == account.username
    assert details["default_workspace"] in [w["id"] for w in details["workspaces"]]
    other = live_server.new_account()
    theirs = httpx.get(other.url + "account/v2/details/", headers=other.headers).json()
    assert theirs["id"] != details["id"] and theirs["username"] == other.username
    assert httpx.get(account.url + "account/v2/details/").status_code == 401


def test_a_shape_that_differs_is_reported() -> None:
    """The checker itself: a missing key, a wrong type and a bool for an int are caught."""
    shape = {"id": str, "count": int}
    assert shape_problems({"id": "a", "count": 1}, shape, "body") == []
    assert len(shape_problems({"id": "a"}, shape, "body")) == 1
    assert len(shape_problems({"id": 1, "count": 1}, shape, "body")) == 1
    assert len(shape_problems({"id": "a", "count": True}, shape, "body")) == 1
