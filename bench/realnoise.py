"""`bench quality --tasks realnoise`: noise as saved files hold it, ours against CBM3D.

The `denoise` task follows the published tables (unclipped float noise). Real files are
different: the noise is clipped to 0..255 and rounded to 8 bits, and a camera's noise grows
with the signal. Protocol (seeded per image, CBSD68, RGB PSNR / SSIM of the 8-bit result):
- sigma=15/25/50: clean + N(0, sigma^2), clipped to 0..255, rounded to u8.
- poisson-gaussian: z = a * Poisson(y / a) + N(0, b^2) with a = 2.55 and b = 5.1 on the
  0..255 scale (a = 0.01, b = 0.02 on 0..1; the model of Foi et al., IEEE TIP 2008), then
  clipped and rounded: noise sd about 5 at black, 17 at mid-grey and 26 at white.
Every method gets the same u8 image. Rows:
- ours, noise measured: restore task=denoise with sigma (and gain) null, engine defaults;
- ours, noise given: the true sigma (Poisson-Gaussian: sigma = b and gain = a);
- CBM3D (bm3d_rgb): Gaussian levels at the true sigma, as users run it; Poisson-Gaussian
  through the same generalized Anscombe transform and exact unbiased inverse as ours
  (engine/tasks/noise_model.py) with the true a and b, at unit sigma: its best fair setting;
- CBM3D + clip inverse (Gaussian levels): the same CBM3D output mapped through the clipped-mean
  inverse ours uses (Foi 2009), so the comparison also holds against a clipping-aware CBM3D.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.tasks.noise_model import NoiseModel, stabilise, unstabilise

from .metrics import psnr, quantize, ssim
from .peers import _versioned

DATASET = "CBSD68"
GAUSSIAN = (15, 25, 50)
PG_GAIN, PG_SIGMA = 2.55, 5.1
LEVELS = tuple(f"sigma={s}" for s in GAUSSIAN) + ("poisson-gaussian",)
OURS_MEASURED = "Sfumato (ours), noise measured"
OURS_GIVEN = "Sfumato (ours), noise given"
CBM3D = "CBM3D"
CBM3D_INV = "CBM3D + clip inverse"


def noisy_u8(clean: np.ndarray, level: str, rng: np.random.Generator) -> np.ndarray:
    """The saved noisy file: noise drawn for `level`, clipped to 0..255, rounded to u8."""
    y = clean.astype(np.float64)
    if level == "poisson-gaussian":
        z = PG_GAIN * rng.poisson(y / PG_GAIN) + rng.standard_normal(y.shape) * PG_SIGMA
    else:
        z = y + rng.standard_normal(y.shape) * float(level.split("=")[1])
    return quantize(z)


def true_model(level: str) -> NoiseModel:
    if level == "poisson-gaussian":
        return NoiseModel(PG_SIGMA, PG_GAIN, clipped=True)
    return NoiseModel(float(level.split("=")[1]), 0.0, clipped=True)


def cbm3d(u8: np.ndarray, model: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
    """(CBM3D as run on the file at the true sigma, the same mapped through our inverse);
    signal-dependent noise goes through the transform first (then both are the same)."""
    import bm3d

    z = torch.from_numpy(u8.astype(np.float64))
    if model.gain > 0:
        g, s = stabilise(z, model)
        d = np.asarray(bm3d.bm3d_rgb(g.numpy() / 255.0, sigma_psd=s / 255.0)) * 255.0
        out = unstabilise(torch.from_numpy(d), model).numpy()
        return out, out
    d = np.asarray(bm3d.bm3d_rgb(u8.astype(np.float64) / 255.0, sigma_psd=model.sigma / 255.0)) * 255.0
    return d, unstabilise(torch.from_numpy(d), model).numpy()


def run_realnoise(qr: Any) -> None:
    """Fill qr.rec with the realnoise rows (see the module docstring)."""
    from .quality import _rng, _timed

    levels = LEVELS[1:2] + LEVELS[3:] if qr.cfg.quick else LEVELS
    ours = qr._ours_method("realnoise", "restore", qr.ours.run if qr.ours else None)  # None: skipped, says why
    peers = {p.name: p for p in qr._peer_methods("denoise")}
    has_bm3d = CBM3D in peers
    limits = {lv: qr.cfg.bm3d_limit for lv in levels}
    if qr.cfg.bm3d_limit_pg is not None:
        limits["poisson-gaussian"] = qr.cfg.bm3d_limit_pg
    pkg = _versioned("bm3d")
    for level in levels:
        model = true_model(level)
        items = qr._images(DATASET)
        for i, item in enumerate(items):
            clean = qr._load(item)
            u8 = noisy_u8(clean, level, _rng(qr.cfg.seed, "realnoise", level, i))
            outs: dict[str, np.ndarray] = {}

            def record(name: str, kind: str, out: np.ndarray, sec: float, note: str, package: str = "") -> None:
                out = quantize(out)
                outs[name] = out
                qr.rec.cell("realnoise", DATASET, level, name, kind, package, note).add(
                    item.name, sec, psnr=psnr(out, clean), ssim=ssim(out, clean))

            if ours is not None:
                given = {"sigma": model.sigma, "gain": model.gain or None}
                for name, params, note in ((OURS_MEASURED, {"sigma": None}, "sigma and gain null (measured)"),
                                           (OURS_GIVEN, given, "the true sigma (and gain)")):
                    p = {"task": "denoise", **qr._ours_params("realnoise"), **params}
                    out, sec = _timed(qr.ours.run, "restore", {"image": u8}, p)
                    record(name, "ours", out, sec, note)
                    if name == OURS_MEASURED:
                        noise = qr.ours.last_meta.get("found", {}).get("noise", {})
                        qr.rec.cells[("realnoise", DATASET, level, name)].values.setdefault(
                            "sigma_measured", []).append(float(noise.get("sigma", float("nan"))))
            limit = limits[level]
            if has_bm3d and (limit is None or i < limit):
                (plain, inv), sec = _timed(cbm3d, u8, model)
                pg = model.gain > 0
                record(CBM3D, "peer", plain, sec, "bm3d_rgb; GAT + exact unbiased inverse, true a, b, unit sigma"
                       if pg else "bm3d_rgb, sigma_psd = the true sigma", pkg)
                if not pg:
                    record(CBM3D_INV, "peer", inv, sec, "the CBM3D output through our clipped-mean inverse", pkg)
            qr._log_progress("realnoise", DATASET, level, i, len(items), outs, clean)
            if level == "sigma=25":
                qr._keep_example("realnoise", level, i, item.name, u8, outs, clean)
