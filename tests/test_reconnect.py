"""A job in flight when its engine restarts fails at once with a clear error (issue 18 D2)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import free_port
from engine.client import Client, EngineClientError
from engine.server import Engine

ROOT = Path(__file__).resolve().parents[1]


def test_engine_restart_fails_the_jobs_it_lost(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--bind", address, "--models",
                              str(tmp_path), "--device", "cpu"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    client = Client(address, timeout=3.0, shm=False)
    try:
        with Client(address, timeout=60) as probe:
            probe.ping(timeout=60)  # the engine is up (a cold start imports torch)
        image = np.zeros((4, 4, 3), np.uint8)
        job = client.submit("echo", {"image": image}, {"steps": 200, "delay": 60})
        first.kill()
        first.wait()
        with Engine(bind=address, models_dir=tmp_path, device="cpu"):
            start = time.monotonic()
            with pytest.raises(EngineClientError) as lost:
                job.result(timeout=20)
            assert lost.value.code == "engine_restarted" and "job lost" in lost.value.message
            assert time.monotonic() - start < 10  # noticed from the first pong, not at the timeout
            again = client.run("echo", {"image": image}, timeout=10)  # the new engine serves the client
            assert np.array_equal(again.image, image)
    finally:
        client.close()
        first.kill()
        first.wait()
