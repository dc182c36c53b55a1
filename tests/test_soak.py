"""The soak bench (bench/soak.py), short: a real engine subprocess and real clients on loopback.

The suite runs 1.5 s with 4 clients, each going once through the whole mix first however short
the run or busy the machine: every kind of job occurs at least 4 times, so a lost or duplicated
job, a segment left in /dev/shm or an unclean exit fails it. RSS flatness needs minutes and is
judged by the long runs (`python -m bench soak --minutes 1` in CI, 30 minutes for the
figures in docs/performance.md), not here.
"""
from __future__ import annotations

import json

from bench.__main__ import main
from bench.soak import MIX, SoakConfig, run_soak


def test_short_soak_loses_nothing_and_leaves_nothing(tmp_path):
    res = run_soak(SoakConfig(clients=4, seconds=1.5, out=str(tmp_path), sample_s=0.25))
    assert res["failures"] == [], res["failures"]
    assert res["lost"] == res["duplicated"] == res["wrong"] == 0
    assert res["accepted"] >= 4 * len(MIX)
    assert res["terminal_messages"] == res["accepted"]
    assert res["results_ok"] >= 4 * 4 and res["cancelled_ok"] >= 4 and res["errors_ok"] >= 4  # each client, each kind
    assert res["shm_results"] >= 1 and res["shm_left"] == []
    assert res["engine_exit"] == 0
    assert all(c["jobs"] > 0 and c["p50_ms"] for c in res["clients"])
    assert len(res["rss_samples"]) >= 5  # every 0.25 s while the clients run
    assert json.loads((tmp_path / "soak.json").read_text())["accepted"] == res["accepted"]
    assert "lost 0, duplicated 0" in (tmp_path / "soak.md").read_text()


def test_soak_is_bounded():
    assert main(["soak", "--clients", "100", "--seconds", "5"]) == 2
    assert main(["soak", "--clients", "2", "--minutes", "1000"]) == 2
