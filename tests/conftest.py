"""Shared fixtures: the committed tiny real model (tests/tiny_model.py), free ports, one torch thread."""
from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tiny_model import FIXTURE as TINY_FIXTURE
from tiny_model import TINY_ARCH  # noqa: F401  (tests import it from here)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

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
               "test_zoo_inpaint.py",
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
    """A models/ folder holding 'builtin': the committed tiny model (tests/tiny_model.py), copied
    so that tests may add models beside it."""
    root = tmp_path_factory.mktemp("tiny_models")
    shutil.copytree(TINY_FIXTURE / "builtin", root / "builtin")
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
