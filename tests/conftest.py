"""Shared fixtures: a tiny real model trained once per test session."""
from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from engine.diffusion.trainer import TrainConfig, train

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_ARCH = {"channels": [8, 16, 16, 16], "down_blocks": [1, 1, 1, 1], "up_blocks": [1, 1, 1, 1],
             "emb_dim": 32, "groups": 4}

# Up to two torch threads per test process, fewer when parallel workers share the cores.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


# Run first: xdist (`make test`: --dist loadscope --no-loadscope-reorder) hands modules to the
# workers in collection order, so a heavy module collected late keeps one worker busy while the
# other idles. The
# longest modules, longest first (about 13 to 4 s each on a quiet 2-core machine; the zoo benchmark
# smoke run left the list when it stopped starting a second interpreter); the rest
# keep their order.
HEAVY_FIRST = ("test_training.py", "test_bench_quality_quick.py", "test_thin_client.py", "test_bench_speed_quick.py",
               "test_seamless.py", "test_zoo_inpaint.py",
               "test_soak.py", "test_style_model.py", "test_keys.py", "test_krita_plugin.py",
               "test_cli.py", "test_server.py", "test_oldphoto_bench.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: modules stay whole


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A models/ folder holding 'builtin': a tiny network trained briefly on dead leaves.

    Real weights from the real trainer, small enough to train in seconds; its quality is
    not the point, its behaviour through the engine is.
    """
    # Parallel workers (pytest-xdist) share one base folder: the first trains, the others wait
    # on the lock and reuse its model, so a parallel run trains it once, as a serial run does.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root = shared / "tiny_models"
    with open(shared / "tiny_models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not root.is_dir():
            partial = Path(tempfile.mkdtemp(dir=shared))
            cfg = TrainConfig(folders=[], out=str(partial / "builtin"), steps=60, patch=32, batch=8, lr=1e-3,
                              warmup=10, synthetic="dead-leaves", sample_every=0, checkpoint_every=60,
                              architecture=dict(TINY_ARCH), seed=0)
            with single_thread():
                train(cfg, log=lambda *_: None)
            partial.rename(root)  # whole or absent, even if a worker dies mid-training
    return root


@contextmanager
def single_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread, and spin-waiting threads crawl on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """single_thread() for a whole module of tiny-network tests."""
    with single_thread():
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def zoo_extra() -> None:
    """Skips without the zoo extra (spandrel). A fixture, not a collection-time skipif: importing
    spandrel (and torchvision) costs about a second, paid only by a worker that runs zoo tests."""
    from engine.zoo.backend import available

    if not available():
        pytest.skip("the zoo extra (spandrel) is not installed")


@pytest.fixture()
def raw(engine):
    """A raw DEALER connection (tests/rawclient.py) to the module's `engine` fixture."""
    from rawclient import Raw

    r = Raw(engine.address)
    yield r
    r.close()
