"""Ctrl-C during a sync, through the real CLI in a subprocess against a real server (a
fault proxy between them makes each upload slow): the first Ctrl-C stops the run within
seconds, saying what it did; a second one quits at once. Either way, the next sync
completes with exactly one copy of each image on the server and a clean catalog."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from support.faultproxy import FaultProxy
from support.synchelp import Clone, Remote, World, image_hash
from support.waiting import limit, until

N = 500
LABELS = ("dog", "cat", "bird")
UPLOAD = r"training-image/$"  # the upload request (not add-label/, update/, ...)


@pytest.fixture
def proxied(account, tmp_path):
    proxy = FaultProxy(account.url).start()
    world = World(proxy.url, account.token, tmp_path)
    world.remote.close()
    world.remote = Remote(account.url, account.token)  # the test's own view: no delays
    yield world, proxy
    world.remote.close()
    proxy.stop()


def seeded(world: World) -> Clone:
    a = world.init("a", "pets")
    for i in range(N):
        a.write(f"{LABELS[i % 3]}/i{i}.jpg", i)
    return a


def start(clone: Clone, command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localrepo", "-C", str(clone.root), command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clone.env,
    )


def uploads_under_way(world: World) -> None:
    until(lambda: len(world.remote.images()) >= 5, limit(120), "uploads under way", step=0.1)


def ends(proc: subprocess.Popen[str]) -> tuple[float, str, str]:
    """How long the process took to end from now, and its output."""
    started = time.monotonic()
    out, err = proc.communicate(timeout=limit(60))
    return time.monotonic() - started, out, err


def resumes_without_duplicates(world: World, a: Clone) -> dict:
    summary = a.sync()  # exit 0: in sync
    rows = world.remote.images()
    counts = Counter(r.hash for r in rows)
    assert len(rows) == N and set(counts.values()) == {1}, counts.most_common(3)
    want = {image_hash(i): {LABELS[i % 3]: None} for i in range(N)}
    assert {r.hash: r.labels for r in rows} == want
    assert Counter(lab["name"] for lab in world.remote.labels()) == Counter(LABELS)
    a.verify()
    assert a.conflicts() == []
    status = a.status()
    assert status["tasks"][0]["labels"] == {
        lab: N // 3 + (i < N % 3) for i, lab in enumerate(LABELS)
    }
    return summary


def test_ctrl_c_during_a_500_image_push_stops_within_3_s_and_the_next_sync_resumes(proxied):
    world, proxy = proxied
    a = seeded(world)
    proxy.add("POST", UPLOAD, "delay", times=10 * N, seconds=0.2)
    proc = start(a, "push")
    try:
        uploads_under_way(world)
        proc.send_signal(signal.SIGINT)
        took, out, err = ends(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert took < limit(3), f"the first Ctrl-C took {took:.1f}s to stop the push\n{err}"
    assert "Stopping: waiting for " in err and "(Ctrl-C again to quit now)" in err, err
    stopped = [line for line in err.splitlines() if line.startswith("Stopped: uploaded ")]
    assert stopped and stopped[0].endswith(f"of {N} images; the next 'repo push' resumes."), err
    done = int(stopped[0].split()[2])
    assert 0 < done < N, err
    # What it says it uploaded is on the server, labelled (the requests in flight ended).
    labelled = [r for r in world.remote.images() if r.labels]
    assert len(labelled) >= done
    assert "Traceback" not in err
    summary = resumes_without_duplicates(world, a)
    assert summary["uploaded"] <= N - done


def test_requests_slower_than_the_grace_are_abandoned_and_settled_by_the_next_sync(proxied):
    world, proxy = proxied
    a = seeded(world)
    # Each upload takes 6 s to reach the server: past the 2 s grace, the client gives
    # up on them; they still reach the server, their answers lost.
    proxy.add("POST", UPLOAD, "delay", times=10 * N, seconds=6.0)
    proc = start(a, "push")
    try:
        until(
            lambda: sum(1 for m, _p, _a in proxy.seen if m == "POST") >= 8,
            limit(120),
            "uploads sent",
            step=0.05,
        )
        proc.send_signal(signal.SIGINT)
        took, out, err = ends(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert took < limit(3), f"the first Ctrl-C took {took:.1f}s\n{err}"
    assert "requests left unanswered" in err and "the next 'repo push' resumes." in err, err
    proxy.rules.clear()
    resumes_without_duplicates(world, a)


def test_a_second_ctrl_c_quits_at_once_and_the_journal_recovers(proxied):
    world, proxy = proxied
    a = seeded(world)
    # Uploads slower than the grace: the first Ctrl-C is still waiting for them when the
    # second comes.
    proxy.add("POST", UPLOAD, "delay", times=10 * N, seconds=5.0)
    proc = start(a, "sync")
    try:
        uploads_under_way(world)
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        first = []
        while not first or not first[-1].startswith("Stopping"):
            line = proc.stderr.readline()
            assert line, f"the first Ctrl-C said nothing: {first}"
            first.append(line)
        proc.send_signal(signal.SIGINT)
        took, out, err = ends(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert took < limit(1), f"the second Ctrl-C took {took:.1f}s\n{err}"
    assert "Quit. The next 'repo sync' recovers" in err, err
    assert "Stopped:" not in err  # it did not wait to count
    proxy.rules.clear()
    resumes_without_duplicates(world, a)


def test_ctrl_c_before_the_run_executes_anything_interrupts_at_once(proxied):
    world, proxy = proxied
    a = world.init("a", "pets")
    a.write("dog/x.jpg", 1)
    # The run's first look at the server's tasks is held: it is listing, not executing.
    held = proxy.add("GET", r"/task/", "hold")
    proc = start(a, "sync")
    try:
        until(lambda: held.arrived.is_set() or proc.poll() is not None, what="the task lookup")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        took, out, err = ends(proc)
    finally:
        held.release.set()
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert took < limit(3), f"Ctrl-C took {took:.1f}s\n{err}"
    assert "Aborted." in err and "Stopping" not in err, err  # as before this change
    assert "Traceback" not in err
    assert world.remote.images() == []
    s = a.sync()
    assert s["uploaded"] == 1, s
    a.verify()
