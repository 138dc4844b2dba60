"""The words of a stopped sync and its request's grace (sync/stopping.py), and the exit
code a stopped run gets (cli/sync_cmds.py)."""

from __future__ import annotations

import time

from localrepo.cli.sync_cmds import sync_exit_code
from localrepo.errors import EXIT_STOPPED
from localrepo.sync.stopping import GRACE, StopRequest, quit_text, stopped_text, stopping_text


def test_the_first_ctrl_c_names_the_requests_it_waits_for() -> None:
    assert stopping_text(8) == (
        "Stopping: waiting for 8 requests in flight (Ctrl-C again to quit now)..."
    )
    assert stopping_text(1) == (
        "Stopping: waiting for 1 request in flight (Ctrl-C again to quit now)..."
    )
    assert stopping_text(0) == "Stopping (Ctrl-C again to quit now)..."


def test_a_stopped_run_says_what_it_did_of_what_was_planned() -> None:
    text = stopped_text(
        "sync", uploaded=37, to_upload=500, downloaded=0, to_download=0, abandoned=0
    )
    assert text == "Stopped: uploaded 37 of 500 images; the next 'repo sync' resumes."
    text = stopped_text("pull", uploaded=0, to_upload=0, downloaded=3, to_download=20, abandoned=2)
    assert text == (
        "Stopped: downloaded 3 of 20 images (2 requests left unanswered); "
        "the next 'repo pull' resumes."
    )
    assert stopped_text(
        "push", uploaded=0, to_upload=0, downloaded=0, to_download=0, abandoned=0
    ) == ("Stopped: nothing was sent or fetched; the next 'repo push' resumes.")
    assert quit_text("sync").startswith("Quit. The next 'repo sync' recovers")


def test_the_grace_runs_from_the_request() -> None:
    stop = StopRequest()
    assert not stop.requested and stop.grace_left() == GRACE and not stop.abandons()
    with stop.working():
        assert stop.in_flight == 1
        stop.request()
        assert stop.requested and 0 < stop.grace_left() <= GRACE
        assert stop.abandons()  # stopped with a worker still busy
    assert stop.in_flight == 0 and not stop.abandons()
    stop.requested_at = time.monotonic() - GRACE - 1  # as if the grace were over
    assert stop.grace_left() == 0


def test_a_stopped_run_exits_130_before_anything_else() -> None:
    summary = {
        "stopped": True,
        "failed": [{"what": "a.jpg", "reason": "x"}],
        "conflicts": 2,
        "dry_run": False,
        "tasks": [
            {"stop": None, "held": [], "problems": [], "left_for_other_side": 3, "twins_left": 0}
        ],
    }
    assert sync_exit_code(summary) == EXIT_STOPPED == 130
    assert sync_exit_code({**summary, "stopped": False}) == 6
