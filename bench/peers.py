"""Classical peers: what users would otherwise use, run in the benchmark's own process.

Every peer is optional: a missing package makes the peer 'unavailable' with the reason, and
the report says so instead of failing. The packages live in the `bench` extra
(`pip install -e .[bench]`), never in the engine's core dependencies.

Signatures (images are (h, w, 3) RGB; uint8 unless said otherwise):
- denoise(noisy, sigma): noisy is float on the 0..255 scale, unclipped; sigma on 0..255.
- sr(lr, scale): upscaled uint8 image of size lr * scale.
- inpaint(image, mask): mask (h, w) uint8, 255 = hole; returns the filled image.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

import numpy as np
from PIL import Image


@dataclass
class Peer:
    """A classical method: display name, task, the package that provides it, and the call."""

    name: str
    task: str
    package: str
    fn: Callable[..., np.ndarray] | None
    note: str = ""
    reason: str = ""  # why it is unavailable
    slow: bool = False  # minutes per set: limited separately in full runs, skipped in quick mode

    @property
    def available(self) -> bool:
        return self.fn is not None

    def __call__(self, *args, **kwargs) -> np.ndarray:
        if self.fn is None:
            raise RuntimeError(f"{self.name} is unavailable: {self.reason}")
        return self.fn(*args, **kwargs)


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


# --- OpenCV -------------------------------------------------------------------------------
try:
    import cv2
except ImportError as exc:  # the bench extra is not installed
    cv2 = None
    _CV2_REASON = f"opencv-python-headless is not installed ({exc})"
else:
    _CV2_REASON = ""

NLM_H_PER_SIGMA = 0.6  # h = hColor = 0.6 sigma, chosen on scikit-image samples (not on eval data)


def _nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
    bgr = np.ascontiguousarray(_u8(noisy)[..., ::-1])
    h = float(NLM_H_PER_SIGMA * sigma)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)
    return out[..., ::-1]


def _cv2_inpaint(flag: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(image[..., ::-1])
        m = np.ascontiguousarray((np.asarray(mask) > 127).astype(np.uint8) * 255)
        return cv2.inpaint(bgr, m, 3, flag)[..., ::-1].copy()
    return run


# --- BM3D ---------------------------------------------------------------------------------
# Imported on first use: importing bm3d takes seconds, and quick runs never call it.
_BM3D_REASON = "" if importlib.util.find_spec("bm3d") is not None else "bm3d is not installed"


def _cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    out = bm3d.bm3d_rgb(np.asarray(noisy, dtype=np.float64) / 255.0, sigma_psd=sigma / 255.0)
    return np.asarray(out) * 255.0


# --- PatchMatch ---------------------------------------------------------------------------
def _load_patchmatch() -> tuple[Callable | None, str, str]:
    """pypatchmatch (native PatchMatch, maintained with InvokeAI), else patchmatch-cython."""
    reasons = []
    try:
        from patchmatch import patch_match
        if patch_match.patchmatch_available:
            def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
                patch_match.set_random_seed(0)
                m = (np.asarray(mask) > 127).astype(np.uint8) * 255
                return patch_match.inpaint(np.ascontiguousarray(image), m, patch_size=3)
            return run, "pypatchmatch", ""
        reasons.append("pypatchmatch is installed but its native library did not load")
    except ImportError as exc:
        reasons.append(f"pypatchmatch is not installed ({exc})")
    try:
        import patchmatch_cython

        def run_cy(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return patchmatch_cython.inpaint_pyramid(np.ascontiguousarray(image), np.asarray(mask) > 127, seed=0)
        return run_cy, "patchmatch-cython", ""
    except ImportError as exc:
        reasons.append(f"patchmatch-cython is not installed ({exc})")
    return None, "pypatchmatch", "; ".join(reasons)


# --- resampling ---------------------------------------------------------------------------
def _resize(method: int) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(lr: np.ndarray, scale: int) -> np.ndarray:
        h, w = lr.shape[:2]
        return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), method))
    return run


def _versioned(dist: str) -> str:
    v = package_version(dist)
    return f"{dist} {v}" if v else dist


def all_peers() -> list[Peer]:
    """Every peer, available or not, in the order the report shows them."""
    cv_fn = cv2 is not None
    pm_fn, pm_pkg, pm_reason = _load_patchmatch()
    return [
        Peer("CBM3D", "denoise", _versioned("bm3d"), None if _BM3D_REASON else _cbm3d,
             note="bm3d_rgb, sigma_psd = sigma (the true noise level)", reason=_BM3D_REASON, slow=True),
        Peer("OpenCV NLM", "denoise", _versioned("opencv-python-headless"), _nlm if cv_fn else None,
             note=f"fastNlMeansDenoisingColored, h = hColor = {NLM_H_PER_SIGMA} sigma, 7/21 windows, "
                  "input clipped to 8 bits", reason=_CV2_REASON),
        Peer("Bicubic", "sr", _versioned("pillow"), _resize(Image.Resampling.BICUBIC),
             note="Pillow BICUBIC (a = -0.5)"),
        Peer("Lanczos", "sr", _versioned("pillow"), _resize(Image.Resampling.LANCZOS),
             note="Pillow LANCZOS (a = 3)"),
        Peer("OpenCV Telea", "inpaint", _versioned("opencv-python-headless"),
             _cv2_inpaint(cv2.INPAINT_TELEA) if cv_fn else None, note="cv2.inpaint, radius 3", reason=_CV2_REASON),
        Peer("OpenCV NS", "inpaint", _versioned("opencv-python-headless"),
             _cv2_inpaint(cv2.INPAINT_NS) if cv_fn else None, note="Navier-Stokes, cv2.inpaint, radius 3",
             reason=_CV2_REASON),
        Peer("PatchMatch", "inpaint", _versioned(pm_pkg), pm_fn,
             note="patch radius 3 (7x7 patches), seed 0", reason=pm_reason),
    ]


def peers_for(task: str) -> list[Peer]:
    return [p for p in all_peers() if p.task == task]
