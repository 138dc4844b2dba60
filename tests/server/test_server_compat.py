"""Compatibility gaps with the hosted service (issue 21): label wipe, search terms, the
user route and the hosted defaults, through the official SDK where it has a call and
raw HTTP otherwise, against a real server.
"""

from __future__ import annotations

import httpx
from ximilar.client import RecognitionClient

from localrepo.server.searchterms import search_terms

from .helpers import attach, image_bytes, make_label, make_task, upload


def _sdk(account, **kwargs: object) -> RecognitionClient:
    return RecognitionClient(
        token=account.token, endpoint=account.url, resource_name=None, **kwargs
    )


# ---- DELETE label/<id>/wipe ------------------------------------------------------------------


def test_sdk_label_wipe_removes_the_label_and_its_images(account) -> None:
    client = _sdk(account)
    with account.client() as api:
        cat, dog = make_label(api, "cat"), make_label(api, "dog")
        both = upload(api, image_bytes(5101))
        only_cat = upload(api, image_bytes(5102))
        only_dog = upload(api, image_bytes(5103))
        for image, label in ((both, cat), (both, dog), (only_cat, cat), (only_dog, dog)):
            attach(api, image["id"], label["id"])
        # The same bytes in another image of the workspace cannot exist (duplicates are
        # refused), so each wiped image's file goes with it.
        cat_file = httpx.get(only_cat["img_path"])
        assert cat_file.status_code == 200

        label, _ = client.get_label(cat["id"])
        label.wipe()

        assert api.get(f"label/{cat['id']}/").status_code == 404
        left = [x["id"] for x in api.get("training-image/").json()["results"]]
        assert left == [only_dog["id"]]
        assert api.get(f"label/{dog['id']}/").json()["images_count"] == 1
        assert httpx.get(only_cat["img_path"]).status_code == 404
        assert httpx.get(only_dog["img_path"]).status_code == 200


def test_wipe_is_scoped_and_answers_404_for_what_is_not_yours(live_server, account) -> None:
    other = live_server.new_account()
    with other.client() as theirs:
        their_label = make_label(theirs, "theirs")
        their_image = upload(theirs, image_bytes(5104))
        attach(theirs, their_image["id"], their_label["id"])
    with account.client() as api:
        r = api.delete(f"label/{their_label['id']}/wipe")
        assert r.status_code == 404 and r.json() == {"detail": "Label not found."}
        r = api.delete("label/not-an-id/wipe/")
        assert r.status_code == 404
    with other.client() as theirs:
        assert theirs.get(f"training-image/{their_image['id']}/").status_code == 200


# ---- search ---------------------------------------------------------------------------------


def test_search_terms_follow_the_framework_rules() -> None:
    assert search_terms("red car") == ["red", "car"]
    assert search_terms("red,car") == ["red", "car"]
    assert search_terms('"red car" blue') == ["red car", "blue"]
    assert search_terms("'a, b'") == ["a, b"]
    assert search_terms('"say \\"hi\\""') == ['say "hi"']
    assert search_terms(" , ,, ") == []
    assert search_terms("a\x00b") == ["ab"]


def test_label_search_ands_the_terms_and_keeps_quoted_phrases(account) -> None:
    with account.client() as api:
        for name in ("red car", "red bike", "blue car", "car, red", "Čáp"):
            make_label(api, name)

        def names(query: str) -> list[str]:
            r = api.get("label/", params={"search": query})
            assert r.status_code == 200, r.text
            return sorted(x["name"] for x in r.json()["results"])

        assert names("red car") == ["car, red", "red car"]
        assert names('"red car"') == ["red car"]
        assert names("red,bike") == ["red bike"]
        assert names('"car, red"') == ["car, red"]
        assert names("čÁp") == ["Čáp"]
        assert len(names(",")) == 5
    client = _sdk(account)
    found = client.get_labels_by_substring("bike")
    assert [x.name for x in found[0]] == ["red bike"]


# ---- account/v2/user/ -----------------------------------------------------------------------


def test_sdk_user_details(live_server, account) -> None:
    ws = live_server.create_workspace(account.username, "second")
    details = _sdk(account).get_user_details()
    assert details["username"] == account.username
    names = [w["name"] for w in details["workspaces"]]
    assert names == ["Default", "second"]
    assert details["default_workspace"] == details["workspaces"][0]["id"]
    assert ws in [w["id"] for w in details["workspaces"]]
    r = httpx.get(account.url + "account/v2/user/")
    assert r.status_code == 401


# ---- --compat hosted ------------------------------------------------------------------------


def test_hosted_profile_asks_twenty_images_per_label(server_factory) -> None:
    server = server_factory("--compat", "hosted", "--no-worker")
    account = server.new_account()
    with account.client() as api:
        task = make_task(api, "t")
        for name in ("a", "b"):
            label = make_label(api, name)
            api.post(f"task/{task['id']}/add-label/", json={"label_id": label["id"]})
            for i in range(6):
                image = upload(api, image_bytes(5200 + i + (100 if name == "b" else 0)))
                attach(api, image["id"], label["id"])
        r = api.post(f"task/{task['id']}/train/")
        assert r.status_code == 400
        assert "20" in r.text, r.text
