"""The server on PostgreSQL: `--database-url postgresql+psycopg://...` against a real,
throwaway PostgreSQL cluster (tests/support/pgcluster.py).

The contract tests imported below run here a second time, against a server whose rows
live in PostgreSQL (this module's `live_server` overrides the SQLite one), plus what
only matters with a server-grade database: concurrent writers. The whole server suite
runs on PostgreSQL with `LOCALREPO_TEST_SERVER_DB=postgres pytest tests/server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .helpers import all_pages, b64, image_bytes, make_label
from .test_server_images import (  # noqa: F401  (collected again, on PostgreSQL)
    labelled,
    test_bulk_update_by_ids_and_by_label_filter,
    test_deleting_a_label_detaches_it_everywhere,
    test_duplicate_upload_answers_the_exact_sdk_message,
    test_failed_uploads_leave_no_rows_and_no_files,
    test_image_filters,
    test_list_rows_are_the_same_objects_as_the_detail_answers,
    test_listing_pages_follow_next_and_keep_every_filter,
    test_upload_multipart_with_meta_data_json_string,
)
from .test_server_keyset import (  # noqa: F401
    test_a_cursor_never_shows_another_workspace,
    test_a_filtered_listing_through_next_equals_the_numbered_pages,
    test_a_tampered_cursor_is_a_400_naming_after,
    test_an_image_added_while_a_listing_is_read_is_not_missed,
)
from .test_server_sdk import test_sdk_full_flow  # noqa: F401
from .test_server_tasks import (  # noqa: F401
    test_deleting_a_multi_label_task_drops_its_negative_label_only,
    test_get_update_delete_task,
    test_label_type_must_fit_task_type,
    test_null_characters_are_refused_with_a_400_naming_the_field,
    test_task_pagination_follows_absolute_next_and_keeps_the_workspace,
)


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: Any, request: pytest.FixtureRequest
) -> Iterator[Any]:
    # The root conftest's class: a plain `from conftest import` can find tests/sync's
    # conftest.py instead (both are imported as "conftest"; the last one wins).
    plugins = request.config.pluginmanager.get_plugins()
    LiveServer = next(p.LiveServer for p in plugins if hasattr(p, "LiveServer"))

    server = LiveServer(
        tmp_path_factory.mktemp("pg-server") / "data", database_url=postgres.new_database()
    )
    server.start()
    yield server
    server.stop()


def test_the_server_really_keeps_its_rows_in_postgresql(
    live_server: Any, api: httpx.Client
) -> None:
    import psycopg

    assert live_server.database_url.startswith("postgresql+psycopg://")
    assert not (live_server.data_dir / "server.db").exists()
    image = api.post("training-image/", json={"base64": b64(image_bytes(7))}).json()
    dsn = live_server.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id FROM images WHERE id = %s", (image["id"],)).fetchone()
    assert row == (image["id"],)


def test_concurrent_uploads_of_the_same_bytes_make_one_image(api: httpx.Client) -> None:
    body = {"base64": b64(image_bytes(11))}

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=30) as c:
            return c.post("training-image/", json=body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    created = [r for r in answers if r.status_code == 201]
    duplicates = [r for r in answers if r.status_code == 400]
    assert len(created) == 1, [r.text for r in answers]
    assert len(duplicates) == 15
    image_id = created[0].json()["id"]
    assert all(f"image ID '{image_id}'" in r.json()["detail"] for r in duplicates)


def test_concurrent_labelling_of_many_images_loses_no_link(api: httpx.Client) -> None:
    label = make_label(api, "busy")
    ids = [
        api.post("training-image/", json={"base64": b64(image_bytes(100 + k))}).json()["id"]
        for k in range(24)
    ]

    def link(image_id: str) -> int:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=30) as c:
            return c.post(
                f"training-image/{image_id}/add-label/", json={"label_id": label["id"]}
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(link, ids))
    assert set(statuses) <= {200, 201}, statuses
    listed = all_pages(api, "training-image/", {"labels": label["id"]})
    assert sorted(i["id"] for i in listed) == sorted(ids)
