"""The bound on loaded models (engine/registry.py): least recently used out, held models kept."""
from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from engine.cli import main
from engine.client import Client
from engine.registry import MAX_LOADED_MODELS, ModelRegistry
from engine.server import Engine

NAMES = ("a", "b", "c")


@pytest.fixture()
def three_models(tiny_models_dir, tmp_path):
    """Three real model folders (copies of the tiny trained model: three files, three loads)."""
    for name in NAMES:
        shutil.copytree(tiny_models_dir / "builtin", tmp_path / name)
    return tmp_path


def loaded(reg: ModelRegistry) -> set[str]:
    return {m["name"] for m in reg.list() if m["loaded"]}


def in_thread(fn) -> None:
    """Run fn on another thread (another job's worker) and wait for it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    th.join()
    assert not errors, errors


def test_least_recently_used_model_is_unloaded(three_models):
    reg = ModelRegistry(three_models, "cpu", max_models=2)
    a = reg.get("a")
    reg.get("b")
    assert loaded(reg) == {"a", "b"}
    assert reg.get("a") is a  # a cache hit makes a the most recently used
    reg.get("c")
    assert loaded(reg) == {"a", "c"} and reg.loaded() == 2
    assert reg.card("b")["architecture"] and loaded(reg) == {"b", "c"}  # a card loads too; now a went
    assert reg.get("a") is not a  # read again after it was unloaded


def test_a_held_model_is_never_unloaded(three_models):
    reg = ModelRegistry(three_models, "cpu", max_models=1)
    with reg.hold():  # a running job on this thread uses a
        reg.get("a")
        in_thread(lambda: reg.get("b"))
        in_thread(lambda: reg.get("c"))
        assert loaded(reg) == {"a", "c"}  # over the limit: a is held, c was just used, b went
    assert loaded(reg) == {"c"}  # the job ended: back to the limit, the held one went first


def test_two_jobs_holding_their_models(three_models):
    reg = ModelRegistry(three_models, "cpu", max_models=1)
    b_held, a_released = threading.Event(), threading.Event()

    def other_job() -> None:
        with reg.hold():
            reg.get("b")
            b_held.set()
            a_released.wait(10)
            reg.get("c")
            assert "b" in loaded(reg)

    th = threading.Thread(target=other_job)
    with reg.hold():
        reg.get("a")
        th.start()
        assert b_held.wait(10)
        assert loaded(reg) == {"a", "b"}
    a_released.set()
    th.join()
    assert loaded(reg) == {"c"}


def test_the_limit_is_a_positive_constant(capsys):
    assert MAX_LOADED_MODELS >= 1
    with pytest.raises(ValueError):
        ModelRegistry(None, "cpu", max_models=0)
    assert main(["serve", "--bind", "tcp://127.0.0.1:*", "--device", "cpu", "--max-models", "0"]) == 2
    assert "max_models must be at least 1" in capsys.readouterr().err


def test_engine_jobs_keep_at_most_the_limit_loaded(three_models):
    """Through the real engine: each job's model is loaded, and an old one unloaded."""
    image = (np.arange(16 * 16 * 3) % 251).astype(np.uint8).reshape(16, 16, 3)
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=three_models, device="cpu", max_models=2)
    with eng.start():
        with Client(eng.address, timeout=60) as c:
            for name, expect in (("a", {"a"}), ("b", {"a", "b"}), ("c", {"b", "c"}), ("a", {"c", "a"})):
                out = c.run("restore", {"image": image}, {"task": "denoise", "sigma": 10.0, "model": name})
                assert out.image.shape == image.shape
                assert {m["name"] for m in c.models() if m["loaded"]} == expect, name
