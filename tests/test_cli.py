"""The command line: info/models/op subcommands in-process and against a served engine, and a
clean SIGTERM shutdown of a real `python -m engine.cli serve` process."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import free_port
from engine.cli import build_parser, main, output_paths, save_image
from engine.cli.common import ProgressBar
from engine.client import Client, EngineClientError
from engine.tasks import OPERATIONS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real engine process; yields (process, address)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    models = tmp_path_factory.mktemp("models")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--bind", address, "--models", str(models),
                             "--device", "cpu", "--max-queue", "4"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = proc.stdout.readline()  # blocks until the engine prints its ready line
    assert "ready" in line and address in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    yield proc, address
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_info_and_models_json_in_process(capsys, tmp_path):
    assert main(["info", "--json", "--models", str(tmp_path), "--device", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["protocol"] == 1 and info["ops"]["echo"]["test_only"] and "limits" in info
    assert main(["models", "--json", "--models", str(tmp_path), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["models", "--models", str(tmp_path), "--device", "cpu"]) == 0
    assert "no models" in capsys.readouterr().out


def test_info_against_served_engine(served, capsys):
    _, address = served
    assert main(["info", "--engine", address]) == 0
    out = capsys.readouterr().out
    assert "echo (test only)" in out and "limits:" in out


def test_op_subcommands_run_through_the_engine(tmp_path, capsys, tiny_models_dir):
    """Derived subcommands: --size for the size pair, a model name standing in for --style."""
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(img)
    engine = ["--models", str(tiny_models_dir), "--device", "cpu", "--quiet"]
    assert main(["generate", "--size", "24x16", "--steps", "1", "--seed", "3", "-o", str(tmp_path / "g.png"),
                 *engine]) == 0
    assert Image.open(tmp_path / "g.png").size == (24, 16)
    capsys.readouterr()
    assert main(["stylize", str(img), "--style", "builtin", "--steps", "1", "--resolution", "64", "--json",
                 "-o", str(tmp_path / "s.png"), *engine]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert meta["model"] == "builtin" and not meta["reference"]
    assert main(["restore", str(img), "--task", "denoise", "--sigma", "auto", "--model", "../builtin",
                 "-o", str(tmp_path / "r.png"), *engine]) == 1
    assert "bad_param" in capsys.readouterr().err and not (tmp_path / "r.png").exists()
    with pytest.raises(SystemExit):
        main(["restore", str(img), "--scale", "3", "-o", str(tmp_path / "r.png")])
    assert "invalid choice" in capsys.readouterr().err


def test_op_options_come_from_schemas():
    parser = build_parser()
    for op_name, op in OPERATIONS.items():
        if op.test_only:
            assert op_name not in parser._subparsers._group_actions[0].choices  # noqa: SLF001
            continue
        sub = parser._subparsers._group_actions[0].choices[op_name]  # noqa: SLF001 - argparse has no public API
        flags = {s for a in sub._actions for s in a.option_strings}
        sized = {n for r in op.rules if type(r).__name__ == "Size" for n in (r.width, r.height)}
        for spec in op.params:
            flag = "--size" if spec.name in sized else "--" + spec.name.replace("_", "-")
            assert flag in flags, (op_name, spec.name)


@pytest.mark.parametrize("op_name", ["inpaint", "restore", "stylize", "generate"])
def test_help_lists_every_param_with_its_doc(op_name, capsys):
    op = OPERATIONS[op_name]
    with pytest.raises(SystemExit):
        main([op_name, "--help"])
    out = "".join(capsys.readouterr().out.split())  # help wraps lines anywhere
    for spec in op.params:
        assert "".join(spec.doc.split()) in out, (op_name, spec.name)
    if op_name == "generate":
        assert "(default256x256)" in out  # the engine's default, from the declaration


def test_output_paths_and_saving(tmp_path):
    paths = output_paths(tmp_path / "out.png", ["image", "image_1", "image_2", "mask"])
    assert [p.name for p in paths.values()] == ["out.png", "out_1.png", "out_2.png", "out_mask.png"]
    for arr in (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 1), np.uint16), np.ones((4, 4, 4), np.float32),
                np.zeros((4, 4, 3), np.uint16)):
        save_image(arr, tmp_path / "x.png")
        assert Image.open(tmp_path / "x.png").size == (4, 4)


def test_bind_refused_without_insecure(capsys):
    assert main(["serve", "--bind", "tcp://0.0.0.0:5555", "--device", "cpu"]) == 2
    assert "--insecure" in capsys.readouterr().err


def test_train_argument_errors(capsys, tmp_path):
    assert main(["train", "--out", str(tmp_path / "m")]) == 2
    assert "--synthetic" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2


def test_train_a_few_steps(tmp_path, capsys):
    out = tmp_path / "models" / "mini"
    assert main(["train", "--synthetic", "dead-leaves", "--out", str(out), "--steps", "2", "--patch", "16",
                 "--batch", "2", "--sample-every", "0", "--device", "cpu"]) == 0
    assert "model written" in capsys.readouterr().out
    from engine.registry import ModelRegistry

    assert "mini" in ModelRegistry(tmp_path / "models").names()


def test_train_from_a_model_uses_the_finetune_recipe(tmp_path, capsys, tiny_models_dir):
    """`--from` takes the fine-tune defaults (low rate, small batch), not the from-scratch ones,
    and a name resolves in the models folder the new model goes into, not the shipped one."""
    from engine.diffusion.recipes import FINETUNE

    folder = tmp_path / "paintings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "builtin", models / "builtin")
    out = models / "style"
    assert main(["train", str(folder), "--from", "builtin", "--out", str(out),
                 "--steps", "2", "--patch", "16", "--sample-every", "0", "--device", "cpu"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["recipe"]["lr"] == FINETUNE["lr"] and card["recipe"]["batch"] == FINETUNE["batch"]
    assert card["recipe"]["steps"] == 2 and card["base_model"] == "builtin"
    assert card["parameters"] == json.loads((tiny_models_dir / "builtin" / "model.json").read_text())["parameters"]
    assert main(["train", str(folder), "--from", "nosuch", "--models", str(models), "--out", str(tmp_path / "x"),
                 "--steps", "1", "--device", "cpu"]) == 2
    assert "'nosuch' is not installed" in capsys.readouterr().err


def test_models_kinds_a_continued_run_is_base_a_finetune_is_style(tmp_path, capsys, tiny_models_dir):
    """`builtin`, trained on from its own earlier version, is a base model; a model fine-tuned
    from another one is a style model (docs/models.md)."""
    models = tmp_path / "models"
    for name, base in (("builtin", "builtin v4"), ("mystyle", "builtin")):
        shutil.copytree(tiny_models_dir / "builtin", models / name)
        card = json.loads((models / name / "model.json").read_text())
        (models / name / "model.json").write_text(json.dumps({**card, "name": name, "base_model": base}))
    assert main(["models", "--models", str(models), "--device", "cpu"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["builtin"].startswith("base,") and lines["mystyle"].startswith("style,")


def test_progress_bar_shows_the_queue_position(served, capsys):
    """While another connection's job runs, the CLI's bar says "queued, 1 ahead" (the engine's
    `queue` capability, which the CLI's hello lists), then shows the steps."""
    _, address = served
    img = np.zeros((8, 8, 3), np.uint8)
    with Client(address, timeout=10) as busy, Client(address, timeout=10) as cli:
        running = busy.submit("echo", {"image": img}, {"steps": 5, "delay": 1.0})
        cli.hello()
        bar = ProgressBar("echo", enabled=True)
        cli.run("echo", {"image": img}, {"steps": 2}, on_progress=bar)
        bar.close()
        running.result()
    err = capsys.readouterr().err
    assert "echo: queued, 1 ahead" in err and err.index("queued") < err.index("2/2")


def test_sigterm_cancels_running_and_answers_queued(served):
    proc, address = served
    with Client(address, timeout=10) as client:
        img = np.zeros((8, 8, 3), np.uint8)
        running = client.submit("echo", {"image": img}, {"steps": 50, "delay": 30})
        queued = [client.submit("echo", {"image": img}) for _ in range(2)]
        assert [j.position for j in queued] == [1, 2]
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        for job in [running, *queued]:
            with pytest.raises(EngineClientError) as info:
                job.result(10)
            assert info.value.code == "cancelled"
    assert proc.wait(15) == 0
    assert "engine stopped" in proc.stderr.read()
