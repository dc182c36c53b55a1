"""Measure an image before `restore` touches it, and choose what `auto` runs.

Why a module of its own: every estimate (noise, JPEG quality, blur, defects) is taken on the
input as it came, and the choice of chain, the parameters it runs with and the report of
what was found all follow from those numbers. restore.py then only runs the stages.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import estimate
from .blur_estimate import BlurEstimate, estimate_blur
from .defect_classes import classify
from .defect_evidence import clear_marks, min_clear_marks
from .defects import DefectParams, detect_defects
from .noise_model import NoiseModel

AUTO_MIN_SIGMA = 2.5  # auto denoises only above this measured sigma (0..255 units)
AUTO_MAX_QUALITY = 90  # auto treats JPEGs saved at a higher quality as clean (no visible blocking above it)
AUTO_MAX_BLUR_NOISE = 12.0  # above this noise sigma the edges cannot tell blur, so auto does not deblur
AUTO_MIN_BLUR_QUALITY = 75  # below this JPEG quality quantisation has taken the fine detail blur is read from
# Noise counts as signal-dependent when the fitted noise variance at level 200 is at least this
# many times that at level 30: Gaussian noise on CBSD68 fits a ratio of at most 1.2 (sigma 15
# and 25, six photos), camera-like Poisson-Gaussian noise (gain 2.55, sigma 5.1) 3 to 6.
SIGNAL_DEPENDENT_RATIO = 2.0


@dataclass
class Analysis:
    """The measurements, the chain to run, and the parameters it runs with."""

    tasks: list[str]
    found: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    sigma_est: float | None = None
    sigma: float | None = None
    gain: float = 0.0  # signal-dependent noise variance per level (Poisson part), 0 = Gaussian
    additive: float | None = None  # the additive sigma beside a measured gain
    quality: int | None = None
    offset: tuple[int, int] = (0, 0)
    blur: dict[str, Any] = field(default_factory=dict)  # blur_sigma or motion_length + motion_angle
    defects: np.ndarray | None = None

    def estimates(self) -> dict[str, Any]:
        """The legacy flat `estimates` of meta (noise sigma, JPEG quality)."""
        out: dict[str, Any] = {}
        if "noise" in self.found:
            out["noise_sigma"] = self.found["noise"]["sigma"]
        if "jpeg" in self.found:
            out["jpeg_quality"] = self.found["jpeg"]["quality"]
        return out


def analyse(u8: np.ndarray, tasks: list[str], params: dict[str, Any], mask: np.ndarray | None) -> Analysis:
    """Measure what the requested tasks (or auto) need on the (H, W, 3) crop in 0..255.

    `mask`: the selection over the crop (0..1) or None."""
    auto = tasks == ["auto"]
    a = Analysis(tasks=[] if auto else list(tasks))
    need_sigma = auto or ("denoise" in tasks and params["sigma"] is None) \
        or any(t in tasks for t in ("deblur", "upscale"))
    if need_sigma:
        a.sigma_est = estimate.noise_sigma(u8)
        a.found["noise"] = {"sigma": round(a.sigma_est, 2), "significant": a.sigma_est >= AUTO_MIN_SIGMA}
    if (auto or "denoise" in tasks) and params["sigma"] is None and a.found["noise"]["significant"]:
        _noise_levels(a, u8, params["gain"])
    if auto or ("jpeg" in tasks and params["quality"] is None):
        jpeg = estimate.jpeg_quality(u8)
        a.found["jpeg"] = {"quality": jpeg.quality,
                           "significant": jpeg.quality is not None and jpeg.quality <= AUTO_MAX_QUALITY}
        if jpeg.quality is not None:
            a.offset = jpeg.offset
            if "jpeg" in tasks:
                a.quality = jpeg.quality
    if auto or ("repair" in tasks and params["defects"] == "detect"):
        region = mask > 0 if mask is not None else None
        noise = a.sigma_est if a.sigma_est is not None else 0.0
        a.defects = detect_defects(u8, DefectParams(sensitivity=params["sensitivity"], noise=noise), region)
        _, counts = classify(a.defects)
        for name, n in counts.items():
            a.found[name] = {"count": n}
        a.found["defect_pixels"] = int(a.defects.sum())
        if auto:
            a.found["clear_marks"] = clear_marks(u8, a.defects)
    if auto or ("deblur" in tasks and params["blur_sigma"] is None and params["motion_length"] is None):
        blur = estimate_blur(u8, a.defects, noise=a.sigma_est or 0.0) if not auto or _blur_readable(a) \
            else BlurEstimate("none", 0.0)
        a.found["blur"] = {"kind": blur.kind, "sigma": round(blur.sigma, 2)}
        if blur.kind == "motion":
            a.found["blur"].update(length=round(blur.length, 1), angle=round(blur.angle, 1))
        a.blur = blur.params() or ({"blur_sigma": max(round(blur.sigma, 2), 0.3)} if "deblur" in tasks else {})
    if auto:
        a.tasks = _choose(a)
    _settle(a, params)
    return a


def _noise_levels(a: Analysis, u8: np.ndarray, gain: float | None) -> None:
    """Fit the noise-level function; signal-dependent noise is denoised with its own model
    (gain and the additive sigma), and reported as such."""
    nl = estimate.noise_levels(u8, gain=gain)
    var = lambda y: nl.gain * y + nl.sigma ** 2  # noqa: E731
    if gain is None and var(200.0) < SIGNAL_DEPENDENT_RATIO * max(var(30.0), 1e-6):
        return
    a.gain, a.additive = nl.gain, nl.sigma
    a.found["noise"].update(signal_dependent=True, gain=round(nl.gain, 3), additive_sigma=round(nl.sigma, 2))


def _blur_readable(a: Analysis) -> bool:
    """Whether the edges can tell blur apart from noise and JPEG smoothing."""
    q = a.found["jpeg"]["quality"]
    return (a.sigma_est or 0.0) < AUTO_MAX_BLUR_NOISE and (q is None or q >= AUTO_MIN_BLUR_QUALITY)


def _choose(a: Analysis) -> list[str]:
    """The chain auto runs, in processing order."""
    chain = []
    if a.defects is not None and a.found["clear_marks"] >= min_clear_marks(*a.defects.shape):
        chain.append("repair")
    else:  # a few texture ridges or noise specks: reported, not repaired
        for name in ("dust", "hairs", "scratches"):
            if name in a.found:
                a.found[name]["significant"] = False
    if a.found.get("jpeg", {}).get("significant"):
        chain.append("jpeg")
        a.quality = a.found["jpeg"]["quality"]
    elif a.found["noise"]["significant"]:
        chain.append("denoise")
    if a.blur:
        chain.append("deblur")
    return chain


def _settle(a: Analysis, params: dict[str, Any]) -> None:
    """Fill in the parameters the chain runs with, dropping tasks that have nothing to do."""
    if "jpeg" in a.tasks and params["quality"] is not None:
        a.quality = params["quality"]
    if "jpeg" in a.tasks and a.quality is None:
        a.skipped["jpeg"] = "no JPEG quantisation grid found in the image; pass quality to force it"
        a.tasks.remove("jpeg")
    if params["sigma"] is not None:
        a.sigma, a.gain = params["sigma"], float(params["gain"] or 0.0)
    else:
        a.sigma = a.additive if a.additive is not None else a.sigma_est
    if "denoise" in a.tasks and a.sigma is not None and a.sigma < 0.5 and not a.gain:
        a.skipped["denoise"] = f"measured noise sigma {a.sigma:.2f} is negligible"
        a.tasks.remove("denoise")
    if "deblur" in a.tasks and not a.blur:
        if params["blur_sigma"] is not None:
            a.blur = {"blur_sigma": params["blur_sigma"]}
        elif params["motion_length"] is not None:
            a.blur = {"motion_length": params["motion_length"], "motion_angle": params["motion_angle"]}


def applied(a: Analysis, scale: int, defect_pixels: int | None) -> list[dict[str, Any]]:
    """The chain as run, each step with the parameters it used (meta `applied`)."""
    steps: list[dict[str, Any]] = []
    for t in a.tasks:
        if t == "repair":
            steps.append({"task": t, "pixels": int(defect_pixels or 0)})
        elif t == "jpeg":
            steps.append({"task": t, "quality": int(a.quality)})
        elif t == "denoise":
            steps.append({"task": t, "sigma": round(float(a.sigma), 2), **({"gain": round(a.gain, 3)} if a.gain else {})})
        elif t == "deblur":
            steps.append({"task": t, **a.blur})
        elif t == "upscale":
            steps.append({"task": t, "scale": scale})
    return steps


def noise_model(a: Analysis, clipped: bool) -> NoiseModel:
    """What denoise undoes: the measured or given noise, and whether the file clipped it."""
    return NoiseModel(float(a.sigma), float(a.gain), clipped)
