"""`bench quality --tasks oldphoto`: old-photo damage found, repaired and deblurred.

Damage is drawn by bench/oldphoto_damage.py (seeded) over CBSD68; the rows record:
- detector: precision / recall / F1 per class at the default sensitivity. Scratches and
  hairs pixel by pixel (recall: truth pixels of the class covered by the mask; precision:
  pixels the detector puts in that class lying within one pixel of any drawn mark), dust
  speck by speck (a speck is found when the mask touches it; a detected speck is right when
  it touches a drawn mark);
- false positives: share of pixels flagged on the undamaged photos (colour, mono, sepia);
- repair: PSNR of damaged / repaired / 5x5 median against the clean photo, and the chroma
  error (mean |Cb|+|Cr| difference, 0..255) of the repaired pixels on mono and sepia;
- deblur: PSNR of blind deblur (the blur measured) against deblur told the true kernel;
- auto: whether `task=auto` picked exactly the expected chain, per kind of damage.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.tasks.defect_classes import CLASSES, classify, label_components
from engine.tasks.defects import detect_defects

from . import oldphoto_damage as dmg

TONES = ("colour", "mono", "sepia")
DATASET = "CBSD68"
METHOD = "Sfumato (ours)"
GAUSS = (1.0, 2.0, 3.0)
MOTION = ((5.0, 20.0), (10.0, 75.0), (15.0, 140.0))
DETECTOR_IMAGES = 20  # full mode: detector and false positives on the first 20 photos
ENGINE_IMAGES = 3  # full mode: repair, deblur and auto (engine jobs) on 256 px crops of the first 3


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.max_pool2d(t, 2 * r + 1, stride=1, padding=r)[0, 0] > 0).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def chroma(img: np.ndarray) -> np.ndarray:
    """(H, W, 2) BT.601 Cb, Cr around 0 (0..255 scale)."""
    f = img[..., :3].astype(np.float32)
    y = dmg.luma(img)
    return np.stack([0.564 * (f[..., 2] - y), 0.713 * (f[..., 0] - y)], axis=-1)


def median5(img: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    p = F.pad(t, (2, 2, 2, 2), mode="reflect").unfold(2, 5, 1).unfold(3, 5, 1)
    return p.reshape(*p.shape[:4], 25).median(-1).values[0].permute(1, 2, 0).numpy().astype(np.uint8)


class DetectorTally:
    """Pixel and speck counts over many images; precision / recall / F1 at the end."""

    def __init__(self) -> None:
        self.n = {c: np.zeros(4) for c in CLASSES}  # right, claimed, covered, truth

    def add(self, found: np.ndarray, d: dmg.Damage) -> None:
        cls, _ = classify(found)
        near = _dilate(d.labels > 0)
        for i, name in enumerate(CLASSES, start=1):
            if name == "dust":
                self._add_specks(found, cls == i, d, near)
                continue
            truth = d.labels == {"hairs": dmg.HAIR, "scratches": dmg.SCRATCH}[name]
            claimed = cls == i
            self.n[name] += [(claimed & near).sum(), claimed.sum(), (truth & found).sum(), truth.sum()]

    def _add_specks(self, found: np.ndarray, claimed: np.ndarray, d: dmg.Damage, near: np.ndarray) -> None:
        ids = np.unique(d.specks[d.specks > 0])
        touched = np.unique(d.specks[_dilate(found) & (d.specks > 0)])
        labels, n = label_components(claimed)
        right = len(np.unique(labels[near & (labels > 0)]))
        self.n["dust"] += [right, n, len(touched), len(ids)]

    def scores(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, (right, claimed, covered, truth) in self.n.items():
            p = right / claimed if claimed else 1.0
            r = covered / truth if truth else 1.0
            out[name] = {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9)}
        return out


def _crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side])


def run_oldphoto(qr: Any) -> None:
    """Fill qr.rec with the oldphoto rows (see the module docstring)."""
    cfg, rec = qr.cfg, qr.rec
    items = qr.data.images(DATASET, qr.cfg.limit)
    quick = cfg.quick
    # CPU-sized by default: --limit raises the detector's share (it runs in process, ~5 s an image)
    det_items = items[:2] if quick else items[:cfg.limit or DETECTOR_IMAGES]
    eng_items = items[:1] if quick else items[:ENGINE_IMAGES]
    side = 96 if quick else 256
    rng_seed = cfg.seed

    # ---- detector and false positives (in process: the engine's own detector function)
    tally = DetectorTally()
    fp = {t: [0, 0] for t in TONES}
    t0 = time.perf_counter()
    for i, item in enumerate(det_items):
        clean = item.load()
        if quick:
            clean = _crop(clean, 128)
        t = TONES[i % 3]
        base = dmg.tone(clean, t)
        flagged = detect_defects(base)
        fp[t][0] += int(flagged.sum())
        fp[t][1] += flagged.size
        d = dmg.draw_damage(base, seed=rng_seed + i)
        tally.add(detect_defects(d.image), d)
    secs = (time.perf_counter() - t0) / max(len(det_items), 1)
    for name, s in tally.scores().items():
        c = rec.cell("oldphoto", DATASET, f"detect {name}", METHOD, "ours",
                     note="pixel-level" if name != "dust" else "object-level")
        c.add(f"{len(det_items)} images", secs, **s)
    for t, (bad, total) in fp.items():
        if total:
            c = rec.cell("oldphoto", DATASET, f"false positives {t}", METHOD, "ours", note="undamaged photos")
            c.add(t, secs, fp_percent=100.0 * bad / total)

    if qr.ours is None:
        qr.skipped.append({"task": "oldphoto", "method": METHOD, "reason": qr.ours_reason})
        return
    ours = qr.ours
    params = dict(qr._ours_params("oldphoto"))

    # ---- repair on colour, mono and sepia crops
    for i, item in enumerate(eng_items):
        for t in TONES:
            clean = dmg.tone(_crop(item.load(), side), t)
            d = dmg.draw_damage(clean, seed=rng_seed + 100 + i, scratches=3, dust=25, hairs=2)
            t1 = time.perf_counter()
            out = ours.run("restore", {"image": d.image}, {"task": "repair", **params})
            sec = time.perf_counter() - t1
            marks = d.labels > 0
            cerr = float(np.abs(chroma(out) - chroma(clean))[marks].sum(-1).mean()) if marks.any() else 0.0
            rec.cell("oldphoto", DATASET, f"repair {t}", METHOD, "ours").add(
                item.name, sec, psnr_damaged=psnr(d.image, clean), psnr=psnr(out, clean),
                psnr_median5=psnr(median5(d.image), clean), chroma_error=cerr)

    # ---- blind vs known-kernel deblur
    blurs = [({"blur_sigma": s}, f"gaussian {s:g}") for s in GAUSS] + \
            [({"motion_length": L, "motion_angle": a}, f"motion {L:g}") for L, a in MOTION]
    if quick:
        blurs = blurs[1::3]  # one Gaussian, one motion
    for i, item in enumerate(eng_items):
        clean = _crop(item.load(), side)
        for kernel, name in blurs:
            img = dmg.blur(clean, kernel.get("blur_sigma"), kernel.get("motion_length"), kernel.get("motion_angle", 0.0))
            t1 = time.perf_counter()
            blind = ours.run("restore", {"image": img}, {"task": "deblur", **params})
            sec = time.perf_counter() - t1
            est = ours.last_meta.get("applied", [{}])[0]
            known = ours.run("restore", {"image": img}, {"task": "deblur", **kernel, **params})
            rec.cell("oldphoto", DATASET, f"deblur {name}", METHOD, "ours").add(
                item.name, sec, psnr_blurred=psnr(img, clean), psnr_blind=psnr(blind, clean),
                psnr_known=psnr(known, clean), estimate=float(est.get("blur_sigma", est.get("motion_length", 0.0))))

    # ---- auto's chain per kind of damage
    for i, item in enumerate(eng_items):
        base = _crop(item.load(), side)
        for kind, expected, img in _auto_cases(base, rng_seed + 200 + i):
            t1 = time.perf_counter()
            ours.run("restore", {"image": img}, {"task": "auto", **params})
            chain = ours.last_meta.get("tasks", [])
            cell = rec.cell("oldphoto", DATASET, "auto chain", METHOD, "ours")
            cell.add(f"{item.name}/{kind}", time.perf_counter() - t1, right=float(chain == expected))
            cell.extra.setdefault("cases", []).append({"image": item.name, "kind": kind, "expected": expected,
                                                       "chain": chain, "summary": ours.last_meta.get("summary")})


def _auto_cases(clean: np.ndarray, seed: int) -> list[tuple[str, list[str], np.ndarray]]:
    """Ten kinds of damage with the chain auto should pick for each."""
    import io

    from PIL import Image

    def jpeg(img: np.ndarray, q: int) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        return np.asarray(Image.open(buf).convert("RGB")).copy()

    rng = np.random.default_rng(seed)
    noisy = lambda img, s: np.clip(img + rng.normal(0, s, img.shape), 0, 255).round().astype(np.uint8)  # noqa: E731
    sepia, mono = dmg.tone(clean, "sepia"), dmg.tone(clean, "mono")
    return [
        ("clean", [], clean),
        ("scratches+dust", ["repair"], dmg.draw_damage(clean, seed, scratches=4, dust=30, hairs=0).image),
        ("hairs+dust", ["repair"], dmg.draw_damage(clean, seed + 1, scratches=0, dust=20, hairs=3).image),
        ("sepia damage", ["repair"], dmg.draw_damage(sepia, seed + 2).image),
        ("jpeg q30", ["jpeg"], jpeg(clean, 30)),
        ("noise 15", ["denoise"], noisy(clean, 15)),
        ("noise 30", ["denoise"], noisy(clean, 30)),
        ("gaussian blur 2", ["deblur"], dmg.blur(clean, 2.0)),
        ("motion blur 9", ["deblur"], dmg.blur(clean, length=9.0, angle=30.0)),
        ("mono dust+blur", ["repair", "deblur"],
         dmg.draw_damage(dmg.blur(mono, 1.8), seed + 3, scratches=0, dust=30, hairs=0).image),
    ]
