"""The learned defect detector's training material and script: damage drawn with a truth that
matches what changed, and the real script training a few steps into weights the engine loads."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from degrade import clean_scene
from engine.tasks.defect_net import defect_probability, load_detector
from tools.defect_damage import LUMA, SMALL_MARK_WEIGHT, VISIBLE, damage

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "train_defect_detector.py"


def test_truth_is_where_the_marks_changed_the_picture():
    rng = np.random.default_rng(0)
    damaged_crops = 0
    for _ in range(12):
        s = damage(clean_scene(96, 96, int(rng.integers(1000))), rng, side_scale=3.0)
        assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
        assert s.truth.shape == s.weight.shape == (96, 96)
        if not s.truth.any():
            continue
        damaged_crops += 1
        assert (s.weight[s.truth] >= 1).all() and s.weight.max() <= SMALL_MARK_WEIGHT
        rim = (torch.nn.functional.max_pool2d(torch.from_numpy(s.truth.astype(np.float32))[None, None], 3, 1, 1)[0, 0]
               .numpy() > 0) & ~s.truth
        assert (s.weight[rim] == 0).all()  # the rim around a mark is left out of the loss
        y = s.image.astype(np.float32) @ LUMA
        inside, outside = y[s.truth], y[~s.truth]
        assert abs(inside.mean() - outside.mean()) > VISIBLE / 2  # marks stand out on average
    assert damaged_crops >= 6  # about one crop in four stays undamaged


def test_script_trains_weights_the_detector_loads(tmp_path: Path, monkeypatch) -> None:
    """A few steps of the real script on a folder of drawn scenes (randomly initialised, so the
    weights say nothing about quality), continued once from its own output."""
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(18):  # 16 are held out for the card's figures
        Image.fromarray(clean_scene(112, 112, i)).save(data / f"scene_{i:02d}.png")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the repository first
    first, second = tmp_path / "a", tmp_path / "b"
    for out, extra in ((first, []), (second, ["--init", str(first / "defect_detector.safetensors")])):
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--data", str(data), "--out", str(out), "--steps", "2",
                                          "--batch", "2", "--threads", "1", *extra])
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        assert exited.value.code == 0
    card = json.loads((second / "defect_detector.json").read_text())
    assert card["steps"] == 2 and card["continued_from"]["steps"] == 2
    assert set(card["held_out"]) == {"precision", "recall", "clean_flagged_percent"}
    net = load_detector(str(second / "defect_detector.safetensors"))
    prob = defect_probability(torch.rand(1, 3, 40, 56), net, views=4)
    assert prob.shape == (40, 56) and np.isfinite(prob).all()
