"""Runs the benchmark's smoke mode through its command line, for the tests that keep the benchmark
from rotting."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import single_thread

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("skimage", reason="the bench extra is not installed (pip install -e .[bench])")
pytest.importorskip("cv2", reason="the bench extra is not installed (pip install -e .[bench])")

# Smoke settings: few sampler steps, and one torch thread in the benchmark, its engine and the
# engines it spawns (tiny networks gain nothing from more, and spinning threads crawl on a busy
# CPU); every code path still runs.
SMOKE = {"inpaint": {"steps": 4}, "stylize": {"steps": 4}, "sr": {"steps": 2}, "zoo": {"steps": 2}}


def run_bench(*args: str, params: dict | None = None) -> None:
    """`python -m bench ARGS --ours-params PARAMS` (default: the smoke settings), run in this
    process through the benchmark's own `main`: the same argument parsing and code as the
    command, without a second interpreter importing torch and the benchmark's peers again
    (seconds of CPU per run). Fails the test with the exit status; pytest shows the output."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench.__main__ import main

    argv = [*args, "--ours-params", json.dumps(SMOKE if params is None else params)]
    omp = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # for the engine processes the speed benchmark starts
    try:
        with single_thread():
            status = main(argv)
    finally:
        if omp is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = omp
    assert status == 0, f"bench {' '.join(args)} exited with {status} (its output is in the captured stdout/stderr)"
