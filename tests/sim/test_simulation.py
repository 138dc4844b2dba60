"""The seeded multi-clone simulation (see simworld.py): CI runs seeds 0..49;
`LOCALREPO_SIM_SEEDS=N` runs N seeds (`make soak SEEDS=N`), `LOCALREPO_SIM_SEED=S`
reruns one seed. A failure prints its seed, the rerun command and the schedule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from simworld import SEED_ENV, Simulation, Stats, record

CI_SEEDS = 50


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
