"""Gradient-domain fusion of completed holes (synthesis.fusion) and the octagonal hole depth."""
from __future__ import annotations

import numpy as np
import torch

from engine.synthesis import Settings, complete
from engine.synthesis.fusion import fuse
from engine.synthesis.pyramid import depth


def _two_pieces(step: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A smooth source with a dark left and a light right half; the hole's left half copies the
    dark side, its right half the light side (a cut with a step down the middle of the hole)."""
    h, w = 40, 80
    img = torch.full((3, h, w), 0.5)
    img[:, :, 40:] += step
    hole = torch.zeros((h, w), dtype=torch.bool)
    hole[10:30, 30:50] = True
    ys, xs = torch.nonzero(hole, as_tuple=True)
    src_x = torch.where(xs < 40, xs - 25, xs + 25)  # copies from x 5-14 (dark) and 65-74 (light)
    picked = torch.full((h, w), -1, dtype=torch.long)
    picked[ys, xs] = ys * w + src_x
    est = img.clone()
    est[:, ys, xs] = img[:, ys, src_x]
    # the known surroundings of the hole are all dark: the light piece is the odd one
    img[:, :, 20:60] = 0.5
    est[:, ~hole] = img[:, ~hole]
    return img, est, hole, picked


def test_fusion_removes_a_small_step_between_smooth_pieces():
    img, est, hole, picked = _two_pieces(0.06)
    out = fuse(img, est, hole, picked, edge=0.1)
    assert float(est[:, hole].std()) > 0.02
    assert float((out[:, hole] - 0.5).abs().max()) < 0.01  # the light piece meets its dark surroundings
    assert torch.equal(out[:, ~hole], est[:, ~hole])


def test_fusion_keeps_a_large_step_as_an_object_edge():
    img, est, hole, picked = _two_pieces(0.4)
    out = fuse(img, est, hole, picked, edge=0.1)
    assert torch.allclose(out, est)


def test_fusion_leaves_a_coherent_copy_alone():
    """A fill copied as one piece (every cut coherent) has nothing to rebuild."""
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.random((3, 40, 80), dtype=np.float32)) * 0.01 + 0.5
    hole = torch.zeros((40, 80), dtype=torch.bool)
    hole[12:28, 20:36] = True
    ys, xs = torch.nonzero(hole, as_tuple=True)
    picked = torch.full((40, 80), -1, dtype=torch.long)
    picked[ys, xs] = ys * 80 + xs + 30
    est = img.clone()
    est[:, ys, xs] = img[:, ys, xs + 30]
    # the border steps stay (the known pixels are the copy's true neighbours only by chance)
    out = fuse(img, est, hole, picked, edge=0.1)
    inner = hole.clone()
    inner[12, :] = inner[27, :] = inner[:, 20] = inner[:, 35] = False
    assert float((out - est)[:, inner].abs().max()) < 0.02


def test_octagonal_depth_is_rounder_than_the_chessboard_one():
    """Around one known pixel the chessboard depth's contours are squares: a diagonal neighbour
    k steps away is as deep as an axis one. The octagonal depth puts the diagonal deeper."""
    hole = torch.ones((41, 41), dtype=torch.bool)
    hole[20, 20] = False
    square, octagon = depth(hole, 30), depth(hole, 30, octagonal=True)
    assert float(square[20, 28]) == float(square[28, 28]) == 8
    assert float(octagon[20, 28]) == 8
    assert 10 <= float(octagon[28, 28]) <= 13  # about sqrt(2) * 8 = 11.3


def test_fusion_leaves_cuts_in_texture_alone():
    """In a noisy texture every cut is textured: the fused completion is the plain one."""
    img = np.random.default_rng(2).random((64, 64, 3), dtype=np.float32)
    hole = np.zeros((64, 64), bool)
    hole[20:44, 20:44] = True
    plain = complete(img, hole, seed=0, settings=Settings(em_coarse=4))
    fused = complete(img, hole, seed=0, settings=Settings(em_coarse=4, fuse=0.1))
    assert np.array_equal(plain, fused)
