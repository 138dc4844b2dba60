"""Ctrl-C in a foreground `repo watch` while its sync uploads slowly (a fault proxy
delays every upload past the stop's grace): the run winds down instead of being run
out, the watcher exits 0 within seconds on its own (not by its 8 s hard exit), and the
next sync completes with one copy of each image."""

from __future__ import annotations

import signal
import time
from collections import Counter

from support.faultproxy import FaultProxy
from support.synchelp import Remote, World
from support.waiting import limit

from .test_watch_recovery import drop_many
from .watchhelp import FAST, until, watch_process


def test_ctrl_c_winds_a_running_sync_down_and_the_watcher_exits_promptly(account, tmp_path):
    proxy = FaultProxy(account.url).start()
    world = World(proxy.url, account.token, tmp_path)
    world.remote.close()
    world.remote = Remote(account.url, account.token)  # the test's own view: no delays
    try:
        repo = world.init("photos", "animals")
        want = drop_many(repo, 120)
        proxy.add("POST", r"training-image/$", "delay", times=10_000, seconds=6.0)
        proc = watch_process(repo, *FAST)
        try:
            until(
                lambda: (
                    sum(1 for m, p, _a in proxy.seen if m == "POST" and p.endswith("image/")) >= 4
                ),
                limit(120),
                "uploads under way",
                step=0.05,
            )
            proc.send_signal(signal.SIGINT)
            started = time.monotonic()
            _out, err = proc.communicate(timeout=limit(60))
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        # Run out, the queue would take minutes; the watcher's own hard exit comes at 8 s.
        assert took < limit(6), f"repo watch took {took:.1f}s to stop\n{err}"
        assert "stopping in the middle of a" not in err, err
        assert "Traceback" not in err
        proxy.rules.clear()
        repo.sync()
        rows = world.remote.images()
        assert Counter(r.hash for r in rows).most_common(1)[0][1] == 1
        assert {r.hash: set(r.labels) for r in rows} == want
        repo.verify()
    finally:
        world.remote.close()
        proxy.stop()
