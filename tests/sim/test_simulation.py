"""The seeded multi-clone simulation (see simworld.py): CI runs seeds 0..49;
`LOCALREPO_SIM_SEEDS=N` runs N seeds (`make soak SEEDS=N`), `LOCALREPO_SIM_SEED=S`
reruns one seed. A failure prints its seed, the rerun command and the schedule."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .simworld import SEED_ENV, Simulation, Stats, record

CI_SEEDS = 50
# A seed whose first steps sync clones concurrently (with faults, in both orders).
RERUN_SEED, RERUN_STEPS = 10, 3


def seeds() -> list[int]:
    if os.environ.get(SEED_ENV):
        return [int(s) for s in os.environ[SEED_ENV].split(",")]
    first = int(os.environ.get("LOCALREPO_SIM_FIRST", "0"))
    return list(range(first, first + int(os.environ.get("LOCALREPO_SIM_SEEDS", CI_SEEDS))))


@pytest.mark.parametrize("seed", seeds())
def test_clones_converge_with_the_server(seed: int, live_server, tmp_path: Path) -> None:
    account = live_server.new_account()
    stats = Stats(seeds=1)
    Simulation(seed, account.url, account.token, tmp_path, stats).run()
    record(stats)


def test_a_seed_with_concurrent_syncs_reruns_identically(live_server, tmp_path: Path) -> None:
    """Two runs of one seed make the same trace: the same turns, faults and crashes.
    Server ids differ between runs, and only they are masked."""
    traces = []
    for run in range(2):
        account = live_server.new_account()
        sim = Simulation(
            RERUN_SEED, account.url, account.token, tmp_path / str(run), Stats(), RERUN_STEPS
        )
        sim.run()
        traces.append([re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", t) for t in sim.trace])
    assert any(line.startswith("together") for line in traces[0])
    assert traces[0] == traces[1]
