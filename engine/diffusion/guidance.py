"""Degradation operators, plug-and-play restoration and style guidance.

Restoration reuses the one generative prior: at every step the denoised estimate is pulled
back towards the observation y through a data-consistency step (DiffPIR, Zhu et al. 2023).
Each operator A therefore offers `forward`, `adjoint` and an exact proximal step

    prox(z, y, rho) = argmin_x ||A x - y||^2 + rho ||x - z||^2,

closed form where the normal equations diagonalise (masking, circular blur by FFT) and
(preconditioned) conjugate gradients otherwise, run to a tight tolerance.

Images are (B, 3, H, W) tensors in [-1, 1] (the denoiser's range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None] | None


# ---------------------------------------------------------------------------------------
# numerical helpers
# ---------------------------------------------------------------------------------------
def conjugate_gradient(apply_a: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x0: torch.Tensor,
                       precond: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       max_iter: int = 200, tol: float = 1e-6) -> torch.Tensor:
    """Solve A x = b for a symmetric positive definite A (given as a function).

    Stops when ||r|| <= tol * ||b||; used where no closed form exists (boundaries, bicubic).
    """
    x = x0.clone()
    r = b - apply_a(x)
    z = precond(r) if precond else r
    p = z.clone()
    rz = torch.sum(r * z)
    b_norm = float(b.norm()) or 1.0
    for _ in range(max_iter):
        if float(r.norm()) <= tol * b_norm:
            break
        ap = apply_a(p)
        alpha = rz / torch.sum(p * ap).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = precond(r) if precond else r
        rz_new = torch.sum(r * z)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


def _symmetric_index(n: int, pad_lo: int, pad_hi: int, device: torch.device) -> torch.Tensor:
    """Indices of a half-sample symmetric extension (edge repeated), as MATLAB imresize uses."""
    i = torch.arange(-pad_lo, n + pad_hi, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _pad_sym(x: torch.Tensor, ph: tuple[int, int], pw: tuple[int, int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    x = x.index_select(-2, _symmetric_index(h, *ph, x.device))
    return x.index_select(-1, _symmetric_index(w, *pw, x.device))


def _pad_sym_adjoint(xp: torch.Tensor, h: int, w: int, ph: tuple[int, int], pw: tuple[int, int]) -> torch.Tensor:
    """Transpose of `_pad_sym`: fold the extension back onto the pixels it copied."""
    iw = _symmetric_index(w, *pw, xp.device)
    out_w = xp.new_zeros(*xp.shape[:-1], w).index_add_(-1, iw, xp)
    ih = _symmetric_index(h, *ph, xp.device)
    return out_w.new_zeros(*out_w.shape[:-2], h, w).index_add_(-2, ih, out_w)


# ---------------------------------------------------------------------------------------
# operators
# ---------------------------------------------------------------------------------------
class Operator:
    """A degradation y = A x (+ noise). Subclasses override what differs."""

    linear = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        """argmin_x ||A x - y||^2 + rho ||x - z||^2 (CG on the normal equations by default)."""
        rho = max(float(rho), 1e-12)
        b = self.adjoint(y) + rho * z
        return conjugate_gradient(lambda v: self.adjoint(self.forward(v)) + rho * v, b, z)

    def init(self, y: torch.Tensor) -> torch.Tensor:
        """A cheap estimate of x from y, the starting point of restoration."""
        return y.clone()


class Identity(Operator):
    """A = I: plain denoising (use `noise_sigma` for the noise level)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        return (y + rho * z) / (1 + rho)


AdditiveNoise = Identity  # y = x + n: the operator is the identity, the noise enters through rho


class Masking(Operator):
    """Keeps the known pixels: A x = (1 - mask) * x, mask 1 = regenerate (soft masks allowed)."""

    def __init__(self, mask: torch.Tensor):
        self.keep = (1 - mask.float()).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.keep

    adjoint = forward

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        rho = max(float(rho), 1e-12)
        return (self.keep * y + rho * z) / (self.keep**2 + rho)

    def init(self, y: torch.Tensor) -> torch.Tensor:
        w = self.keep.expand_as(y)
        mean = (y * w).sum(dim=(-2, -1), keepdim=True) / w.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
        return y * w + mean * (1 - w)


def _cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys cubic with a = -0.5, MATLAB's `cubic`."""
    a = t.abs()
    a2, a3 = a**2, a**3
    return ((1.5 * a3 - 2.5 * a2 + 1) * (a <= 1)
            + (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * ((a > 1) & (a <= 2)))


def _triangle(t: torch.Tensor) -> torch.Tensor:
    return (1 - t.abs()).clamp_min(0)


_KERNELS = {"bicubic": (_cubic, 2.0), "bilinear": (_triangle, 1.0)}


def downsample_taps(scale: int, kernel: str = "bicubic") -> tuple[torch.Tensor, int, int]:
    """1-D taps of antialiased integer downscaling, as MATLAB imresize builds them.

    Output pixel o is centred at input coordinate scale*o + (scale-1)/2; the kernel is
    stretched by `scale` (antialiasing) and normalised. Returns (taps, pad_lo, pad_hi).
    """
    s = int(scale)
    c = (s - 1) / 2
    if kernel == "box":
        return torch.full((s,), 1.0 / s, dtype=torch.float64), 0, 0
    fn, radius = _KERNELS[kernel]
    lo, hi = math.ceil(c - radius * s), math.floor(c + radius * s)
    d = torch.arange(lo, hi + 1, dtype=torch.float64)
    w = fn((d - c) / s)
    keep = w != 0
    d, w = d[keep], w[keep]
    w = w / w.sum()
    return w, int(-d[0]), int(d[-1] - (s - 1))


def _resample_matrix(n: int, taps: torch.Tensor, stride: int, offset: int, boundary: str) -> torch.Tensor:
    """Dense 1-D filtering matrix (n_out, n): row o sums taps[t] * x[bc(stride*o - offset + t)],
    with bc the boundary rule ('symmetric': half-sample mirror, 'circular': wrap)."""
    n_out = n // stride
    t = torch.arange(len(taps))
    idx = stride * torch.arange(n_out)[:, None] - offset + t[None, :]
    if boundary == "circular":
        idx = idx % n
    else:
        idx = idx % (2 * n)
        idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    m = torch.zeros(n_out, n, dtype=torch.float64)
    m.scatter_add_(1, idx, taps.to(torch.float64).expand(n_out, -1).contiguous())
    return m


class _Separable(Operator):
    """A = M_h (x) M_w acting as M_h @ x @ M_w^T on each channel, with an exact prox from the
    eigen-decompositions of the small Gram matrices (Kronecker structure, no iterations)."""

    def _matrices(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _cache(self) -> dict:
        if not hasattr(self, "_store"):
            self._store: dict = {}
        return self._store

    def _mats(self, h: int, w: int, device: torch.device, dtype: torch.dtype):
        key = ("m", h, w, str(device), dtype)
        c = self._cache()
        if key not in c:
            mh, mw = self._matrices(h, w)
            c[key] = (mh.to(device, dtype), mw.to(device, dtype))
        return c[key]

    def _eig(self, h: int, w: int, device: torch.device, dtype: torch.dtype, gram_of_rows: bool):
        """Eigen-decomposition of M M^T (rows, the output grid) or M^T M (columns)."""
        key = ("e", gram_of_rows, h, w, str(device), dtype)
        c = self._cache()
        if key not in c:
            out = []
            for m in self._matrices(h, w):
                g = m @ m.T if gram_of_rows else m.T @ m
                lam, u = torch.linalg.eigh(g)
                out += [lam.clamp_min(0).to(device, dtype), u.to(device, dtype)]
            c[key] = tuple(out)
        return c[key]

    def _in_size(self, y: torch.Tensor) -> tuple[int, int]:
        return y.shape[-2], y.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mh, mw = self._mats(*x.shape[-2:], x.device, x.dtype)
        return mh @ x @ mw.T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        mh, mw = self._mats(*self._in_size(y), y.device, y.dtype)
        return mh.T @ y @ mw

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        rho = max(float(rho), 1e-12)
        h, w = z.shape[-2:]
        if self.reduces:
            # Woodbury: x = z + A^T u, (A A^T + rho) u = y - A z on the small output grid.
            lh, uh, lw, uw = self._eig(h, w, z.device, z.dtype, gram_of_rows=True)
            r = uh.T @ (y - self.forward(z)) @ uw
            return z + self.adjoint(uh @ (r / (lh[:, None] * lw[None, :] + rho)) @ uw.T)
        lh, uh, lw, uw = self._eig(h, w, z.device, z.dtype, gram_of_rows=False)
        b = uh.T @ (self.adjoint(y) + rho * z) @ uw
        return uh @ (b / (lh[:, None] * lw[None, :] + rho)) @ uw.T

    reduces = False


class Downsample(_Separable):
    """Antialiased x2/x4 downscaling (super-resolution). The default kernel is MATLAB's
    `imresize(x, 1/scale, 'bicubic')` (Keys cubic a=-0.5 stretched by the scale, half-sample
    symmetric boundary), which SR benchmarks use to make their low-resolution images; 'bilinear'
    (MATLAB's antialiased triangle) and 'box' (area average) are also offered.
    Needs H and W divisible by the scale. Exact prox by Kronecker eigen-decomposition.
    """

    reduces = True

    def __init__(self, scale: int, kernel: str = "bicubic"):
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        if kernel not in ("bicubic", "bilinear", "box"):
            raise ValueError("kernel must be bicubic, bilinear or box")
        self.scale = int(scale)
        self.kernel = kernel
        self.taps, self.pad_lo, self.pad_hi = downsample_taps(self.scale, kernel)

    def _matrices(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.scale
        if h % s or w % s:
            raise ValueError(f"image size {h}x{w} is not divisible by the scale {s}")
        return (_resample_matrix(h, self.taps, s, self.pad_lo, "symmetric"),
                _resample_matrix(w, self.taps, s, self.pad_lo, "symmetric"))

    def _in_size(self, y: torch.Tensor) -> tuple[int, int]:
        return y.shape[-2] * self.scale, y.shape[-1] * self.scale

    def init(self, y: torch.Tensor) -> torch.Tensor:
        return F.interpolate(y, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(-1, 1)


class _SeparableBlur(_Separable):
    """Blur by a separable (rank-1) kernel with a half-sample symmetric boundary."""

    def __init__(self, kh: torch.Tensor, kw: torch.Tensor):
        self.kh, self.kw = kh, kw

    def _matrices(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        # correlation with the flipped taps = convolution with the kernel
        return (_resample_matrix(h, self.kh.flip(0), 1, len(self.kh) // 2, "symmetric"),
                _resample_matrix(w, self.kw.flip(0), 1, len(self.kw) // 2, "symmetric"))


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """Normalised 2-D Gaussian PSF, odd size (default 2*ceil(3 sigma)+1)."""
    sigma = max(float(sigma), 1e-3)
    size = size or 2 * math.ceil(3 * sigma) + 1
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return (k / k.sum()).float()


def motion_kernel(length: float, angle_deg: float, supersample: int = 8) -> torch.Tensor:
    """Normalised linear motion PSF of `length` pixels at `angle_deg` (0 = horizontal),
    rasterised with supersampling so short and oblique blurs are antialiased."""
    length = max(float(length), 1.0)
    size = 2 * math.ceil(length / 2) + 1
    n = supersample * size * 4
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    a = math.radians(angle_deg)
    xs, ys = t * math.cos(a), -t * math.sin(a)
    c = (size - 1) / 2
    k = torch.zeros(size, size, dtype=torch.float64)
    # bilinear splat of each sample point
    fx, fy = xs + c, ys + c
    x0, y0 = fx.floor(), fy.floor()
    for dx in (0, 1):
        for dy in (0, 1):
            wx = 1 - (fx - (x0 + dx)).abs()
            wy = 1 - (fy - (y0 + dy)).abs()
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            k.index_put_((yi[ok], xi[ok]), (wx * wy)[ok], accumulate=True)
    return (k / k.sum()).float()


def _otf(kernel: torch.Tensor, h: int, w: int, device: torch.device) -> torch.Tensor:
    """rfft2 of the kernel zero-padded to (h, w) with its centre moved to (0, 0)."""
    kh, kw = kernel.shape
    big = torch.zeros(h, w, dtype=torch.float32, device=device)
    big[:kh, :kw] = kernel.to(device)
    big = torch.roll(big, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
    return torch.fft.rfft2(big)


class Blur(Operator):
    """Convolution with a known PSF.

    boundary='circular': periodic image; forward, adjoint and prox are exact FFT formulas.
    boundary='reflect' (default): the image is extended by half-sample symmetry beyond its
    edges before blurring, the realistic model for a photo. A separable kernel (Gaussian) then
    gets an exact prox from the Kronecker eigen-decomposition; a non-separable one (motion)
    uses FFTs on the padded image and conjugate gradients started at z (relative residual 1e-5
    or `cg_iters` iterations; the default 10 is an early-stopped, approximate prox).
    """

    def __init__(self, kernel: torch.Tensor, boundary: str = "reflect", cg_iters: int = 10):
        if kernel.dim() != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
            raise ValueError("the blur kernel must be a 2-D tensor with odd sides")
        if boundary not in ("circular", "reflect"):
            raise ValueError("boundary must be 'circular' or 'reflect'")
        self.kernel = (kernel / kernel.sum()).float()
        self.boundary = boundary
        self.cg_iters = cg_iters
        self.rh, self.rw = kernel.shape[0] // 2, kernel.shape[1] // 2
        self._otfs: dict = {}
        self._sep: _SeparableBlur | None = None
        if boundary == "reflect":
            u, sv, vh = torch.linalg.svd(self.kernel.double())
            if sv[1:].sum() <= 1e-7 * sv[0]:
                kh, kw = u[:, 0] * sv[0].sqrt(), vh[0] * sv[0].sqrt()
                sign = 1.0 if kh.sum() > 0 else -1.0
                self._sep = _SeparableBlur((kh * sign).float(), (kw * sign).float())

    def otf(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        key = (h, w, str(device))
        if key not in self._otfs:
            self._otfs[key] = _otf(self.kernel, h, w, device)
        return self._otfs[key]

    def _circ(self, x: torch.Tensor, conj: bool = False) -> torch.Tensor:
        h, w = x.shape[-2:]
        k = self.otf(h, w, x.device)
        k = k.conj() if conj else k
        return torch.fft.irfft2(torch.fft.rfft2(x.float()) * k, s=(h, w)).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return self._circ(x)
        if self._sep is not None:
            return self._sep.forward(x)
        h, w = x.shape[-2:]
        xp = _pad_sym(x, (self.rh, self.rh), (self.rw, self.rw))
        return self._circ(xp)[..., self.rh:self.rh + h, self.rw:self.rw + w]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.boundary == "circular":
            return self._circ(y, conj=True)
        if self._sep is not None:
            return self._sep.adjoint(y)
        h, w = y.shape[-2:]
        big = F.pad(y, (self.rw, self.rw, self.rh, self.rh))
        big = self._circ(big, conj=True)
        return _pad_sym_adjoint(big, h, w, (self.rh, self.rh), (self.rw, self.rw))

    def _circ_solve(self, b: torch.Tensor, rho: float) -> torch.Tensor:
        h, w = b.shape[-2:]
        k = self.otf(h, w, b.device)
        return torch.fft.irfft2(torch.fft.rfft2(b.float()) / (k.abs() ** 2 + rho), s=(h, w)).to(b.dtype)

    def prox(self, z: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
        rho = max(float(rho), 1e-12)
        if self._sep is not None:
            return self._sep.prox(z, y, rho)
        b = self.adjoint(y) + rho * z
        if self.boundary == "circular":
            return self._circ_solve(b, rho)
        # Plain CG warm-started at z. A circulant preconditioner (or a circular solve on the
        # mirrored image as the start) amplifies the boundary mismatch at the kernel's spectral
        # zeros when rho is small and ruins the result; early-stopped CG from z stays stable.
        return conjugate_gradient(lambda v: self.adjoint(self.forward(v)) + rho * v, b, z,
                                  max_iter=self.cg_iters, tol=1e-5)

    def init(self, y: torch.Tensor) -> torch.Tensor:
        return y.clone()


# ---------------------------------------------------------------------------------------
# JPEG
# ---------------------------------------------------------------------------------------
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


def jpeg_info(path_or_image) -> dict:
    """Quantisation tables and chroma subsampling of a JPEG file (or open PIL JPEG image).

    Returns {"tables": (luma 8x8, chroma 8x8) tensors, "subsampling": "4:2:0"|"4:2:2"|"4:4:4"|None}.
    PIL exposes the tables in natural (row-major) order as `im.quantization`.
    """
    from PIL import Image, JpegImagePlugin

    im = Image.open(path_or_image) if isinstance(path_or_image, (str, Path)) else path_or_image
    q = getattr(im, "quantization", None)
    if not q:
        raise ValueError("not a JPEG image (no quantisation tables)")
    luma = torch.tensor(list(q[0]), dtype=torch.float32).view(8, 8)
    chroma = torch.tensor(list(q.get(1, q[0])), dtype=torch.float32).view(8, 8)
    code = JpegImagePlugin.get_sampling(im)
    sub = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(code)
    return {"tables": (luma, chroma), "subsampling": sub}


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
        b = v.shape[0]
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


# ---------------------------------------------------------------------------------------
# plug-and-play sampling (DiffPIR)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PnPDefaults:
    """Tuned knobs per restoration task (how they were chosen: docs/models.md).

    Sigmas are in the denoiser's units (images in [-1, 1]): the schedule runs from
    sigma_start to sigma_end in `steps` steps. lam scales the data weight
    rho_t = lam * s_n^2 / sigma_t^2. renoise=False is the deterministic half-quadratic
    splitting of DPIR (best PSNR); renoise=True is DiffPIR sampling with zeta the share of
    fresh noise (sharper, more invented detail).
    """

    steps: int
    sigma_start: float
    sigma_end: float
    lam: float
    zeta: float = 0.0
    renoise: bool = False
    min_noise_sigma: float = 0.01

    def knobs(self) -> dict:
        return {"lam": self.lam, "zeta": self.zeta, "renoise": self.renoise, "min_noise_sigma": self.min_noise_sigma}


# Tuned on 128x128 centre crops of the four BSDS500 training images the built-in run holds
# out (never the evaluation sets), with the built-in model at step 750 of its run; checked
# again with its final weights (step 5000). PSNR (RGB) input -> result at step 5000:
#   upscale x4 (MATLAB bicubic LR): bicubic 24.26 -> 24.91 dB; x2: 27.39 -> 28.50 dB
#   deblur, Gaussian 2 px + noise 1.3/255 (reflect): 24.08 -> 27.11 dB
#   deblur, motion 11 px at 30 deg + noise: circular 22.73 -> 30.86 dB, reflect 23.23 -> 29.39 dB
#   jpeg (quality 20, 4:2:0): 27.28 -> 27.92 dB
#   denoise sigma 25/255: 20.30 -> 29.53 dB; sigma 50/255: 14.78 -> 26.41 dB
# DiffPIR-style re-noising (renoise=True, zeta 0.3) scored 0.8-2.7 dB lower on all of them
# with this small model, so it is kept for 'repair' (holes need invented content).
PNP_DEFAULTS: dict[str, PnPDefaults] = {
    "upscale": PnPDefaults(steps=8, sigma_start=0.4, sigma_end=0.02, lam=1.0),
    "deblur": PnPDefaults(steps=8, sigma_start=0.8, sigma_end=0.01, lam=1.0),
    "jpeg": PnPDefaults(steps=4, sigma_start=0.1, sigma_end=0.005, lam=1.0),
    "denoise": PnPDefaults(steps=3, sigma_start=0.0, sigma_end=0.01, lam=3.0),
    "repair": PnPDefaults(steps=20, sigma_start=2.0, sigma_end=0.002, lam=1.0, zeta=0.3, renoise=True,
                          min_noise_sigma=0.001),
}


def pnp_sigmas(steps: int, sigma_start: float, sigma_end: float = 0.002, rho: float = 7.0,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """Karras schedule from sigma_start down to sigma_end, then a final 0."""
    from .sampling import karras_sigmas

    return karras_sigmas(steps, sigma_min=min(sigma_end, sigma_start), sigma_max=sigma_start, rho=rho,
                         device=device)


@torch.no_grad()
def plug_and_play(denoise_fn: DenoiseFn, y: torch.Tensor, operator: Operator, noise_sigma: float,
                  sigmas: torch.Tensor, x_init: torch.Tensor | None = None, callback: Callback = None,
                  generator: torch.Generator | None = None, lam: float = 1.0, zeta: float = 0.3,
                  renoise: bool = True, init_sigma: float | None = None,
                  min_noise_sigma: float = 0.01) -> torch.Tensor:
    """Plug-and-play restoration with the diffusion denoiser as the prior. At each sigma_t:

        x0 = D(x_t, sigma_t)                                    (prior)
        x0 = argmin ||A x - y||^2 + rho_t ||x - x0||^2,  rho_t = lam * s_n^2 / sigma_t^2
        renoise (DiffPIR): x_{t-1} = x0 + sigma_{t-1} (sqrt(1 - zeta) eps_hat + sqrt(zeta) eps),
                           eps_hat = (x_t - x0) / sigma_t
        otherwise (DPIR):  x_{t-1} = x0   (the denoiser treats the remaining error as noise)

    s_n = max(noise_sigma, min_noise_sigma): the floor keeps a noiseless observation from
    becoming an infinitely stiff constraint while the estimate is still rough.

    x_init is the starting image (default: operator.init(y)). With renoise it is brought to
    noise level sigmas[0] by adding noise, assuming it already carries `init_sigma` of noise
    (default: noise_sigma for the identity operator, else 0). Returns the last x0 estimate.
    The callback gets dict(step, total, x, sigma, denoised) after each step and may raise.
    """
    if x_init is None:
        x_init = operator.init(y)
    if init_sigma is None:
        init_sigma = noise_sigma if isinstance(operator, Identity) else 0.0
    s_n = max(float(noise_sigma), float(min_noise_sigma))
    live = [float(s) for s in sigmas if float(s) > 0]
    n = len(live)

    def noise(like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    x = x_init.clone()
    if renoise and n:
        extra = max(live[0] ** 2 - init_sigma**2, 0.0) ** 0.5
        if extra > 0:
            x = x + extra * noise(x)
    x0 = x
    for i, s in enumerate(live):
        s_next = live[i + 1] if i + 1 < n else 0.0
        den = denoise_fn(x, torch.tensor(s, device=x.device))
        x0 = operator.prox(den, y, lam * s_n**2 / s**2)
        if renoise and s_next > 0:
            eps_hat = (x - x0) / s
            x = x0 + s_next * (math.sqrt(1 - zeta) * eps_hat + math.sqrt(zeta) * noise(x))
        else:
            x = x0
        if callback is not None:
            callback({"step": i + 1, "total": n, "x": x, "sigma": s, "denoised": x0})
    return x0


def restore(denoise_fn: DenoiseFn, y: torch.Tensor, operator: Operator, noise_sigma: float, task: str,
            steps: int | None = None, callback: Callback = None, generator: torch.Generator | None = None,
            **overrides) -> torch.Tensor:
    """plug_and_play with the tuned defaults of `task` (upscale, deblur, jpeg, denoise, repair).

    Overrides may set any PnPDefaults field. 'denoise' with steps=1 is the one-shot MMSE
    estimate D(y, noise_sigma), which scored best for plain Gaussian noise.
    """
    d = PNP_DEFAULTS[task]
    fields = {**d.__dict__, **overrides}
    steps = int(steps or fields.pop("steps"))
    fields.pop("steps", None)
    s0, s1 = float(fields.pop("sigma_start")), float(fields.pop("sigma_end"))
    if task == "denoise":
        s0 = max(s0, float(noise_sigma))
        s1 = max(s1, float(noise_sigma)) if steps == 1 else max(min(s1, s0), 1e-3)
    if s0 <= 0:
        return operator.init(y)
    sigmas = pnp_sigmas(steps, s0, s1, device=y.device)
    if task == "denoise" and steps == 1:
        sigmas = torch.tensor([s0, 0.0], device=y.device)
    return plug_and_play(denoise_fn, y, operator, noise_sigma, sigmas, None, callback, generator, **fields)


def estimate_noise_sigma(x: torch.Tensor) -> float:
    """Gaussian noise std (in [-1, 1] units) from the median absolute diagonal Haar detail
    (Donoho's MAD estimator on the finest scale), robust to edges and texture."""
    g = x.float().mean(1, keepdim=True) if x.shape[1] == 3 else x.float()
    h, w = g.shape[-2:]
    g = g[..., : h - h % 2, : w - w % 2]
    hh = (g[..., 0::2, 0::2] - g[..., 0::2, 1::2] - g[..., 1::2, 0::2] + g[..., 1::2, 1::2]) / 2
    # averaging 3 channels divides independent noise variance by 3
    scale = math.sqrt(3.0) if x.shape[1] == 3 else 1.0
    return float(hh.abs().median() / 0.6745 * scale)


# ---------------------------------------------------------------------------------------
# style guidance
# ---------------------------------------------------------------------------------------
class RandomFeatures(nn.Module):
    """A fixed, seeded random-filter convnet: a multi-scale feature pyramid with no
    downloaded weights. Random filters followed by nonlinearities already capture texture
    statistics well (Ustyuzhaninov et al. 2017), which is what style transfer needs."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 96, 128), seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        cin = 3
        for w in widths:
            conv = nn.Conv2d(cin, w, 3, padding=1, padding_mode="reflect")
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * math.sqrt(2.0 / (cin * 9)))
                conv.bias.zero_()
            self.convs.append(conv)
            cin = w
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        h = x
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = F.avg_pool2d(h, 2)
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        return feats


class StyleGuide:
    """Sliced-Wasserstein distance between the multi-scale random-feature distributions of an
    image and a reference (Heitz et al. 2021): project features on fixed random directions,
    sort, compare quantiles. Level 0 is the raw colour distribution (the palette)."""

    def __init__(self, reference: torch.Tensor, directions: int = 32, seed: int = 0,
                 widths: tuple[int, ...] = (32, 64, 96, 128), max_points: int = 16384):
        with torch.inference_mode(False):
            self.net = RandomFeatures(widths, seed).to(reference.device)
            g = torch.Generator().manual_seed(seed + 1)
            chans = [3, *widths]
            self.dirs = [F.normalize(torch.randn(c, directions, generator=g), dim=0).to(reference.device)
                         for c in chans]
        self.max_points = max_points
        self.gen = torch.Generator().manual_seed(seed + 2)
        with torch.no_grad():
            self.ref = [self._sorted(f, d) for f, d in zip(self.net(reference.float().clone()), self.dirs)]

    def _sorted(self, f: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Sorted projections (directions, points) of all feature vectors of the batch."""
        c = f.shape[1]
        pts = f.permute(0, 2, 3, 1).reshape(-1, c)
        if pts.shape[0] > self.max_points:
            idx = torch.randperm(pts.shape[0], generator=self.gen)[: self.max_points].to(pts.device)
            pts = pts[idx]
        return torch.sort((pts @ d).T, dim=1).values

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over levels of the squared quantile differences (differentiable in x)."""
        total = x.new_zeros(())
        for f, d, ref in zip(self.net(x.float()), self.dirs, self.ref):
            proj = self._sorted(f, d)
            if ref.shape[1] != proj.shape[1]:
                ref = F.interpolate(ref[None], size=proj.shape[1], mode="linear", align_corners=True)[0]
            total = total + ((proj - ref) ** 2).mean() / (ref.var() + 1e-6)
        return total / len(self.ref)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """d loss / d x, usable inside no_grad / inference_mode sampling loops."""
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(self.loss(xg), xg)
        return g.to(x.dtype)


def style_guided(denoise_fn: DenoiseFn, guide: StyleGuide, scale: float = 1.0,
                 sigma_max: float = float("inf"), sigma_min: float = 0.0) -> DenoiseFn:
    """Wrap a denoise_fn so each denoised estimate takes one normalised gradient step on the
    style loss: D' = D - scale * 0.05 * g / rms(g). scale 0 disables the guidance; only
    steps with sigma_min <= sigma <= sigma_max are guided."""

    def fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        den = denoise_fn(x, sigma)
        s = float(torch.as_tensor(sigma).reshape(-1)[0])
        if scale <= 0 or not (sigma_min <= s <= sigma_max):
            return den
        g = guide.grad(den)
        rms = g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
        return den - scale * 0.05 * g / rms

    return fn
