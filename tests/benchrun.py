"""Runs the benchmark's smoke mode as a user would, for the tests that keep the benchmark from rotting."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("skimage", reason="the bench extra is not installed (pip install -e .[bench])")
pytest.importorskip("cv2", reason="the bench extra is not installed (pip install -e .[bench])")

# Smoke settings: few sampler steps, and one torch thread in the benchmark and the engine it
# spawns (tiny networks gain nothing from more, and spinning threads crawl on a busy CPU);
# every code path still runs.
SMOKE = ("--ours-params", json.dumps({"inpaint": {"steps": 4}, "stylize": {"steps": 4}, "sr": {"steps": 2},
                                       "zoo": {"steps": 2}}))


def run_bench(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`python -m bench ARGS` with the smoke settings; fails the test with its output on error."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench", *args, *SMOKE], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"bench {args[0]} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc
