"""Measurement operators: the degradations restoration undoes, y = A x (+ noise).

Restoration reuses the one generative prior: at every step the denoised estimate is pulled
back towards the observation y through a data-consistency step (pnp.py, DiffPIR). Each
operator A therefore offers `forward`, `adjoint` and an exact proximal step

    prox(z, y, rho) = argmin_x ||A x - y||^2 + rho ||x - z||^2,

closed form where the normal equations diagonalise (circular blur by FFT, separable
resampling by Kronecker eigen-decomposition) and conjugate gradients otherwise.
The JPEG quantisation constraint lives in jpeg.py.

Images are (B, 3, H, W) tensors in [-1, 1] (the denoiser's range).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..numerics import conjugate_gradient, gaussian_taps


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
    g = gaussian_taps(sigma, None if size is None else (size - 1) // 2, torch.float64)
    return (g[:, None] * g[None, :]).float()


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
