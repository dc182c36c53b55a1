"""The quality-vs-steps sweep of `python -m bench quality`: ours at several sampler step
counts on the first images of three tasks (the report's plot)."""
from __future__ import annotations

import numpy as np

from . import masks as masklib
from .metrics import crop_border, psnr, quantize, rgb_to_y, ssim
from .quality import QualityRun, _timed, hole_input, log, noisy_image


def steps_sweep(run: QualityRun) -> list[dict]:
    """Ours at several sampler step counts on the first few images of three tasks."""
    if run.ours is None:
        return []
    n = 1 if run.cfg.quick else run.cfg.sweep_images
    steps_list = (2, 4) if run.cfg.quick else run.cfg.sweep_steps
    if n <= 0 or not steps_list:  # --sweep-images 0: no sweep (the report keeps the last one)
        return []
    out: list[dict] = []
    plans = []
    if "denoise" in run.cfg.tasks and run.ours.has("restore", "steps"):
        plans.append(("denoise", "CBSD68 sigma=25"))
    if "sr" in run.cfg.tasks and run.ours.has("restore", "steps"):
        plans.append(("sr", "Set5 x2"))
    if "inpaint" in run.cfg.tasks and run.ours.has("inpaint", "steps"):
        plans.append(("inpaint", "CBSD68 box64"))  # thin holes take one step whatever `steps` says
    if run.cfg.quick:
        plans = plans[:1]  # the smoke test only checks that the sweep works
    max_steps = int(run.ours.welcome.get("limits", {}).get("max_steps", 200))
    for task, label in plans:
        for steps in steps_list:
            if steps > max_steps:
                continue
            ps, ss, secs = [], [], []
            if task == "denoise":
                for i, item in enumerate(run.data.images("CBSD68", n)):
                    clean = run._load(item)
                    noisy = noisy_image(clean, 25, run.cfg.seed, "CBSD68", i)
                    res, sec = _timed(lambda: quantize(run.ours.denoise(noisy, 25, **{**run._ours_params("denoise"), "steps": steps})))
                    ps.append(psnr(res, clean)); ss.append(ssim(res, clean)); secs.append(sec)
            elif task == "sr":
                for item in run.data.sr_pairs("Set5", 2, n):
                    hr, lr = run._load_sr(item, 2)
                    res, sec = _timed(lambda: quantize(run.ours.upscale(lr, 2, **{**run._ours_params("sr"), "steps": steps})))
                    y, yh = crop_border(rgb_to_y(res), 2), crop_border(rgb_to_y(hr), 2)
                    ps.append(psnr(y, yh)); ss.append(ssim(y, yh)); secs.append(sec)
            else:
                for i, item in enumerate(run.data.images("CBSD68", n)):
                    clean = run._load(item)
                    mask = masklib.make_mask("box64", clean.shape[0], clean.shape[1], i, run.cfg.seed)
                    inp = hole_input(clean, mask)
                    res, sec = _timed(lambda: quantize(run.ours.inpaint(inp, mask, **{**run._ours_params("inpaint"), "steps": steps})))
                    ps.append(psnr(res, clean, mask)); ss.append(ssim(res, clean, mask)); secs.append(sec)
            out.append({"task": task, "label": label, "steps": steps, "n": len(ps), "psnr": float(np.mean(ps)),
                        "ssim": float(np.mean(ss)), "seconds_per_image": float(np.mean(secs))})
            log(f"[steps sweep {label}] steps={steps}: {out[-1]['psnr']:.2f} dB, {out[-1]['seconds_per_image']:.2f} s")
    return out
