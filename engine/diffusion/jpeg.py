"""The JPEG measurement: the set of images whose DCT coefficients quantise as the file's did.

Restoring a JPEG is plug-and-play restoration inside that set (pnp.py); the tables and
colour transform follow libjpeg (ITU-T T.81), so the constraint matches real files.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .operators import Operator

# ITU-T T.81 Annex K tables (natural order), the ones libjpeg scales by quality.
LUMA_TABLE = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=torch.float32).view(8, 8)
CHROMA_TABLE = torch.tensor([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99], dtype=torch.float32).view(8, 8)

SUBSAMPLING = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2)}


def quality_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg's `jpeg_set_quality` scaling of the standard tables (baseline, clamped to 1..255)."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q  # integer arithmetic, as libjpeg
    def sc(t: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.floor((t * scale + 50) / 100), 1, 255)
    return sc(LUMA_TABLE), sc(CHROMA_TABLE)


_DCT8 = torch.tensor([[(math.sqrt(1 / 8) if u == 0 else math.sqrt(2 / 8)) * math.cos((2 * x + 1) * u * math.pi / 16)
                       for x in range(8)] for u in range(8)], dtype=torch.float32)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] RGB -> JFIF YCbCr in 0..255 (full range, as libjpeg)."""
    r, g, b = ((x + 1) * 127.5).unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return torch.stack([y, cb, cr], 1)


def ycbcr_to_rgb(v: torch.Tensor) -> torch.Tensor:
    y, cb, cr = v[:, 0], v[:, 1] - 128, v[:, 2] - 128
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], 1) / 127.5 - 1


def _block_dct(p: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Orthonormal 8x8 DCT-II of every block of (N, H, W), H and W multiples of 8.

    This is exactly JPEG's F(u, v) (T.81 A.3.3), so coefficients compare with Q directly.
    """
    n, h, w = p.shape
    c = _DCT8.to(p.device, p.dtype)
    blocks = p.reshape(n, h // 8, 8, w // 8, 8)
    if inverse:
        out = torch.einsum("ux,nbucv,vy->nbxcy", c, blocks, c)
    else:
        out = torch.einsum("ux,nbxcy,vy->nbucv", c, blocks, c)
    return out.reshape(n, h, w)


class JPEGConstraint(Operator):
    """The set of images whose JPEG coefficients quantise to those of the decoded image.

    For each 8x8 block of Y (full resolution) and of Cb/Cr (after the encoder's chroma
    subsampling by 2x2 or 2x1 box averaging), the DCT coefficient F must satisfy
    |F - Q k| <= Q/2 with k = round(F_decoded / Q). `project` clamps the coefficients into
    those intervals (an exact Euclidean projection in YCbCr-DCT coordinates; for subsampled
    chroma the correction is spread evenly over each 2x2/2x1 cell, which is the minimum-norm
    correction). Supported: 4:4:4, 4:2:2, 4:2:0; the image is assumed to start at the JPEG's
    block grid (0, 0). Sides that are not multiples of the block (8 or 16) are edge-padded,
    so the edge blocks are only approximately constrained.

    `slack` widens every interval by that many quantisation steps: the decoded pixels were
    rounded to 8 bits (and chroma upsampled), so k is an estimate; a small slack avoids
    locking onto a wrong interval.
    """

    linear = False

    def __init__(self, decoded: torch.Tensor, quality: int | None = None,
                 tables: tuple[torch.Tensor, torch.Tensor] | None = None,
                 subsampling: str = "4:2:0", slack: float = 0.0):
        if tables is None:
            if quality is None:
                raise ValueError("give the quantisation tables or a quality")
            tables = quality_tables(quality)
        if subsampling not in SUBSAMPLING:
            raise ValueError(f"subsampling must be one of {', '.join(SUBSAMPLING)}")
        self.luma, self.chroma = (t.float().view(8, 8) for t in tables)
        self.fy, self.fx = SUBSAMPLING[subsampling]
        self.subsampling = subsampling
        self.slack = float(slack)
        self.shape = decoded.shape
        coefs = self._coefs(decoded)
        self.lo, self.hi = [], []
        for coef, q in zip(coefs, self._qs(decoded)):
            q = self._tile(q, coef)
            k = torch.round(coef / q)
            half = q * (0.5 + self.slack)
            self.lo.append(k * q - half)
            self.hi.append(k * q + half)

    def _qs(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.luma.to(x.device), self.chroma.to(x.device), self.chroma.to(x.device)]

    def _planes(self, x: torch.Tensor) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """Level-shifted Y, Cb, Cr planes (chroma subsampled), padded to whole MCUs."""
        h, w = x.shape[-2:]
        mh, mw = 8 * self.fy, 8 * self.fx
        ph, pw = (-h) % mh, (-w) % mw
        v = rgb_to_ycbcr(x.float()) - 128
        if ph or pw:
            v = F.pad(v, (0, pw, 0, ph), mode="replicate")
        y = v[:, 0]
        c = F.avg_pool2d(v[:, 1:], (self.fy, self.fx)) if (self.fy, self.fx) != (1, 1) else v[:, 1:]
        return [y, c[:, 0], c[:, 1]], (ph, pw)

    def _coefs(self, x: torch.Tensor) -> list[torch.Tensor]:
        planes, _ = self._planes(x)
        return [_block_dct(p) for p in planes]

    def _tile(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.repeat(like.shape[-2] // 8, like.shape[-1] // 8)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest image (in YCbCr-DCT coordinates) whose coefficients lie in the intervals."""
        if x.shape != self.shape:
            raise ValueError(f"shape {tuple(x.shape)} differs from the decoded image {tuple(self.shape)}")
        h, w = x.shape[-2:]
        planes, (ph, pw) = self._planes(x)
        full = rgb_to_ycbcr(x.float()) - 128
        if ph or pw:
            full = F.pad(full, (0, pw, 0, ph), mode="replicate")
        out = []
        for i, p in enumerate(planes):
            coef = _block_dct(p)
            lo, hi = self.lo[i].to(coef.device), self.hi[i].to(coef.device)
            delta = _block_dct(torch.clamp(coef, lo, hi) - coef, inverse=True)
            if i > 0 and (self.fy, self.fx) != (1, 1):
                delta = delta.repeat_interleave(self.fy, -2).repeat_interleave(self.fx, -1)
            out.append(full[:, i] + delta)
        v = torch.stack(out, 1)[..., :h, :w] + 128
        return ycbcr_to_rgb(v).to(x.dtype)

    def violation(self, x: torch.Tensor) -> float:
        """Largest distance (in units of Q) of any coefficient outside its interval; 0 inside."""
        worst = 0.0
        for coef, lo, hi, q in zip(self._coefs(x), self.lo, self.hi, self._qs(x)):
            d = torch.maximum(lo - coef, coef - hi).clamp_min(0) / self._tile(q, coef)
            worst = max(worst, float(d.max()))
        return worst

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x)

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        """The data term is the set's indicator, so the prox is the projection (rho unused)."""
        return self.project(z)
