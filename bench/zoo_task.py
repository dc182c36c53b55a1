"""`zoo` quality task: other projects' checkpoints (engine/zoo) against ours and the classical peers.

Checkpoints are read from a models folder (`--zoo-models DIR`, default ../shared/models beside
the checkout); a missing file skips its rows with the reason. They run through the engine like
any zoo model (`restore --model NAME`): the benchmark starts an in-process engine on a scratch
models folder that links the built-in model and the checkpoints, so every figure includes the
engine's tiling, transport and compositing.

- x4 super-resolution on Set5 and BSD100, the same protocol and LR files as the `sr` task
  (MATLAB-bicubic LR, Y-PSNR/SSIM after shaving 4 pixels), plus two distances of the fixed
  random-weight conv net of bench/style_metrics.py, at full resolution on the shaved RGB images:
  feature distance to the HR image (lower = closer features) and Gram distance (lower = closer
  texture statistics; blur lowers neither). Methods: Pillow bicubic, ours (`--task upscale
  --scale 4`), Real-ESRGAN x4plus (GAN-trained on photos) and Real-ESRGAN Compact animevideov3
  (trained on anime video).
- grey denoising at sigma 25 on CBSD68 converted to grey (Pillow "L", ITU-R 601-2 luma) with the
  `denoise` task's seeded, unclipped noise: DnCNN sigma 25 through the engine (which clips its
  input to [0, 1]) and, as a reference, its network called directly on the unclipped image (the
  published protocol), ours (told sigma; the grey image on all three channels), OpenCV NLM (grey)
  and BM3D (grey, slow: `--bm3d-limit`). PSNR/SSIM of the 8-bit grey result.

Every image's figures are appended to OUT/zoo_progress.jsonl as they are measured, so an
interrupted run is usable; `--zoo-resume` takes the figures already there instead of measuring
them again, and `--zoo-budget MIN` stops starting new images after that many minutes (the rows
then say n of N). `--zoo-parts denoise` or `sr` runs one half: two processes with `--zoo-resume`
share the progress file, and a last run with `--zoo-resume` assembles the rows from it. Images are visited one at a time with every method, so a partial run compares
all methods on the same images.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from .datasets import REPO
from .metrics import crop_border, psnr, quantize, rgb_to_y, ssim
from .ours import DEFAULT_MODELS, Ours, OursUnavailable
from .peers import package_version
from .style_metrics import feature_distance, features, gram_distance

if TYPE_CHECKING:
    from .quality import QualityRun

DEFAULT_ZOO = REPO.parent / "shared" / "models"
SCALE = 4
SIGMA = 25
SR_SETS = ("Set5", "BSD100")
GREY_SET = "CBSD68"
GREY_DATASET = "CBSD68 (grey)"
SR_SETTING = f"x{SCALE}"
DENOISE_SETTING = f"sigma={SIGMA}"
PROGRESS = "zoo_progress.jsonl"
PARTS = ("denoise", "sr")
# BM3D (grey) and the direct DnCNN forward run on the first SLOW_LIMIT images unless --bm3d-limit
# says otherwise: each costs seconds per image on a CPU, and they are references, not contestants.
SLOW_LIMIT = 17
OURS = "Sfumato (ours)"
BICUBIC = "Bicubic"
NLM_GREY = "OpenCV NLM (grey)"
BM3D_GREY = "BM3D (grey)"
DIRECT = "DnCNN sigma 25, direct forward (unclipped input)"
# Grey NLM's h: 0.9 sigma was best of 0.6..1.2 on scikit-image's `camera` at sigma 25 (not on eval
# data); the colour peer's 0.6 sigma (bench/peers.py) leaves grey noise visibly in place.
NLM_GREY_H_PER_SIGMA = 0.9


@dataclass(frozen=True)
class Checkpoint:
    """A zoo checkpoint the task measures: engine model name (file stem), file, label, note."""

    name: str
    file: str
    label: str
    task: str  # upscale | denoise
    note: str


CHECKPOINTS = (
    Checkpoint("realesrgan-x4plus", "realesrgan-x4plus.safetensors", "Real-ESRGAN x4plus", "upscale",
               "ESRGAN RRDBNet 23 blocks, 16.7 M parameters; GAN-trained on synthetic photo degradations "
               "(sharp, not PSNR-optimal)"),
    Checkpoint("realesr-animevideov3-x4", "realesr-animevideov3-x4.pth", "Real-ESRGAN Compact (animevideov3)",
               "upscale", "SRVGGNetCompact, 0.6 M parameters; GAN-trained on anime video, not on photos"),
    Checkpoint("dncnn_25", "dncnn_25.pth", "DnCNN sigma 25", "denoise",
               "DnCNN-S 17 layers, greyscale, trained for sigma 25 (KAIR release)"),
)
NAMES = tuple(c.name for c in CHECKPOINTS)


def log(msg: str) -> None:
    from .quality import log as qlog
    qlog(msg)


class ZooEngine:
    """An in-process engine on a scratch models folder holding links to the built-in model
    and to the chosen checkpoints (nothing is copied; the folder is removed on close)."""

    def __init__(self, builtin_models: Path, zoo_dir: Path, checkpoints: list[Checkpoint], device: str):
        self.dir = Path(tempfile.mkdtemp(prefix="sfumato-zoo-bench-"))
        try:
            (self.dir / "builtin").symlink_to((builtin_models / "builtin").resolve(), target_is_directory=True)
            for c in checkpoints:
                (self.dir / c.file).symlink_to((zoo_dir / c.file).resolve())
            self.ours = Ours(self.dir, device)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.listing = {e["name"]: e for e in self.ours.client.models()}

    def close(self) -> None:
        try:
            self.ours.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Progress:
    """Per-image figures in OUT/zoo_progress.jsonl: appended as measured, read back on resume."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.done: dict[tuple[str, str, str, str], dict] = {}
        if resume and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    r = json.loads(line)
                    self.done[(r["dataset"], r["setting"], r["method"], r["image"])] = r
                except (ValueError, KeyError):
                    continue  # a line cut short by an interrupted run
        elif path.exists():
            path.unlink()

    def add(self, rec: dict) -> None:
        self.done[(rec["dataset"], rec["setting"], rec["method"], rec["image"])] = rec
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")


@dataclass
class _Method:
    name: str
    kind: str  # ours | zoo | peer
    fn: Callable[..., np.ndarray]
    package: str = ""
    note: str = ""
    limit: int | None = None


def grey(img: np.ndarray) -> np.ndarray:
    """Pillow "L" (ITU-R 601-2 luma, rounded to 8 bits): the grey version of a colour image."""
    return np.asarray(Image.fromarray(img).convert("L"), dtype=np.uint8)


def _three(x: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(x, np.float64)[..., None], 3, axis=2)


def _grey_of(out: np.ndarray) -> np.ndarray:
    """A method's output on the 0..255 scale as one grey channel (the mean of its channels)."""
    out = np.asarray(out, np.float64)
    return out.mean(axis=2) if out.ndim == 3 else out


def _nlm_grey(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    u8 = np.clip(np.floor(noisy + 0.5), 0, 255).astype(np.uint8)
    h = float(NLM_GREY_H_PER_SIGMA * sigma)
    return cv2.fastNlMeansDenoising(u8, None, h, 7, 21).astype(np.float64)


def _bm3d_grey(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(noisy / 255.0, sigma_psd=sigma / 255.0)) * 255.0


def _direct_forward(path: Path) -> Callable[[np.ndarray, float], np.ndarray]:
    """A one-channel denoiser's network on the whole unclipped image, outside the engine."""
    import torch

    from engine.zoo.checkpoint import load

    model = load(path).model

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        x = torch.from_numpy(np.asarray(noisy, np.float32) / 255.0)[None, None]
        with torch.no_grad():
            return model(x)[0, 0].double().numpy() * 255.0
    return run


def _resize_bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.Resampling.BICUBIC))


def available_checkpoints(zoo_dir: Path, wanted: tuple[str, ...]) -> tuple[list[Checkpoint], list[dict]]:
    """The wanted checkpoints present in zoo_dir, and a skip entry (with the reason) for the others."""
    found, skipped = [], []
    for c in CHECKPOINTS:
        if c.name not in wanted:
            continue
        if (zoo_dir / c.file).is_file():
            found.append(c)
        else:
            skipped.append({"task": "zoo", "method": c.label,
                            "reason": f"checkpoint {c.file} not found in the zoo models folder ({zoo_dir.name}/); "
                                      "pass --zoo-models DIR"})
    return found, skipped


class ZooRun:
    """The zoo task of one quality run (see the module docstring)."""

    def __init__(self, run: "QualityRun", engine: ZooEngine, checkpoints: list[Checkpoint], progress: Progress):
        self.run, self.engine, self.ours = run, engine, engine.ours
        self.checkpoints = checkpoints
        self.progress = progress
        budget = run.cfg.zoo_budget_min
        self.deadline = time.monotonic() + budget * 60 if budget else None
        self.stopped: str | None = None

    def _ours_params(self) -> dict:
        return self.run._ours_params("zoo")

    # ---- methods ----
    def sr_methods(self) -> list[_Method]:
        ms = [_Method(BICUBIC, "peer", _resize_bicubic, f"pillow {package_version('pillow')}",
                      "Pillow BICUBIC (a = -0.5), as in the super-resolution section")]
        params = self._ours_params()
        ms.append(_Method(OURS, "ours", lambda lr, s: self.ours.upscale(lr, s, **params), "",
                          "restore --task upscale --scale 4, " + (", ".join(f"{k}={v}" for k, v in params.items())
                                                                 or "engine defaults")))
        for c in self.checkpoints:
            if c.task == "upscale":
                ms.append(_Method(c.label, "zoo", lambda lr, s, n=c.name: self.ours.upscale(lr, s, model=n),
                                  c.file, c.note + f"; restore --model {c.name}"))
        return ms

    def denoise_methods(self) -> list[_Method]:
        ms = []
        for c in self.checkpoints:
            if c.task == "denoise":
                ms.append(_Method(c.label, "zoo", lambda x, s, n=c.name: self._zoo_denoise(x, n), c.file,
                                  c.note + f"; restore --model {c.name} --task denoise (the engine clips the "
                                           "input to [0, 1])"))
                ms.append(_Method(DIRECT, "reference", _direct_forward(self.engine.dir / c.file), c.file,
                                  "the checkpoint's network called directly (spandrel, float32, whole image) on "
                                  "the unclipped noisy image, as the published protocol does; not the engine",
                                  self._slow_limit()))
        params = self._ours_params()
        ms.append(_Method(OURS, "ours", lambda x, s: self.ours.denoise(_three(x), s, **params), "",
                          "restore --task denoise, told sigma; the grey image on all three channels"))
        from .peers import _BM3D_REASON, _CV2_REASON

        if not _CV2_REASON:
            ms.append(_Method(NLM_GREY, "peer", _nlm_grey, f"opencv-python-headless {package_version('opencv-python-headless')}",
                              f"fastNlMeansDenoising, h = {NLM_GREY_H_PER_SIGMA} sigma, 7/21 windows, input clipped to 8 bits"))
        else:
            self.run.skipped.append({"task": "zoo", "method": NLM_GREY, "reason": _CV2_REASON})
        if _BM3D_REASON:
            self.run.skipped.append({"task": "zoo", "method": BM3D_GREY, "reason": _BM3D_REASON})
        elif self.run.cfg.quick:
            self.run.skipped.append({"task": "zoo", "method": BM3D_GREY, "reason": "slow peer, skipped in quick mode"})
        else:
            ms.append(_Method(BM3D_GREY, "peer", _bm3d_grey, f"bm3d {package_version('bm3d')}",
                              "bm3d.bm3d, sigma_psd = sigma (the true noise level)", self._slow_limit()))
        return ms

    def _slow_limit(self) -> int:
        return self.run.cfg.bm3d_limit if self.run.cfg.bm3d_limit is not None else SLOW_LIMIT

    def _zoo_denoise(self, noisy: np.ndarray, name: str) -> np.ndarray:
        x = (_three(noisy) / 255.0).astype(np.float32)  # float input, as ours gets; the engine clips it to [0, 1]
        out = self.ours.run("restore", {"image": x}, {"task": "denoise", "model": name})
        return np.asarray(out, np.float64) * 255.0

    # ---- the loop ----
    def _out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stopped = f"time budget of {self.run.cfg.zoo_budget_min:g} min reached"
            return True
        return False

    def _measure(self, dataset: str, setting: str, methods: list[_Method], i: int, image: str, args: tuple,
                 score: Callable[[np.ndarray], dict[str, float]], post: Callable[[np.ndarray], np.ndarray],
                 total: int) -> dict[str, np.ndarray]:
        """Every method on one input (or its figures from the progress file); returns fresh outputs."""
        from .quality import _timed

        outs = {}
        for m in methods:
            if m.limit is not None and i >= m.limit:
                continue
            cell = self.run.rec.cell("zoo", dataset, setting, m.name, m.kind, m.package, m.note)
            cell.extra["of"] = total
            rec = self.progress.done.get((dataset, setting, m.name, image))
            if rec is None:
                raw, sec = _timed(m.fn, *args)
                out = quantize(post(raw))
                outs[m.name] = out
                rec = {"dataset": dataset, "setting": setting, "method": m.name, "image": image,
                       "seconds": round(sec, 4), **{k: round(v, 5) for k, v in score(out).items()}}
                self.progress.add(rec)
            cell.add(image, rec["seconds"], **{k: v for k, v in rec.items()
                                               if k not in ("dataset", "setting", "method", "image", "seconds")})
        parts = [f"{m.name} {np.mean(c.values['psnr']):.2f}" for m in methods
                 if (c := self.run.rec.cells.get(("zoo", dataset, setting, m.name))) and c.values.get("psnr")]
        log(f"[zoo {dataset} {setting}] {i + 1}/{total}  mean PSNR: " + ", ".join(parts))
        return outs

    def run_sr(self) -> None:
        methods = self.sr_methods()
        for dataset in SR_SETS:
            items = self.run.data.sr_pairs(dataset, SCALE, self.run.cfg.settings()["images"])
            for i, item in enumerate(items):
                if self._out_of_time():
                    return
                hr, lr = self.run._load_sr(item, SCALE)
                if (lr.shape[0] * SCALE, lr.shape[1] * SCALE) != hr.shape[:2]:
                    from .datasets import DataError
                    raise DataError(f"{item.lr_path}: LR {lr.shape[:2]} x{SCALE} does not match HR {hr.shape[:2]}")
                hr_shaved = crop_border(hr, SCALE)
                y_hr = rgb_to_y(hr_shaved)
                f_hr = features(hr_shaved / 255.0, side=None)

                def score(out: np.ndarray) -> dict[str, float]:
                    if out.shape != hr.shape:
                        raise RuntimeError(f"x{SCALE} of {lr.shape} returned {out.shape}; expected {hr.shape}")
                    o = crop_border(out, SCALE)
                    y = rgb_to_y(o)
                    f = features(o / 255.0, side=None)
                    return dict(psnr=psnr(y, y_hr), ssim=ssim(y, y_hr), feature_distance=feature_distance(f, f_hr),
                                gram_distance=gram_distance(f, f_hr))

                outs = self._measure(dataset, SR_SETTING, methods, i, item.name, (lr, SCALE), score, lambda x: x,
                                     len(items))
                if dataset == "Set5" and outs:
                    near = np.repeat(np.repeat(lr, SCALE, 0), SCALE, 1)
                    self.run._keep_example("zoo_sr", SR_SETTING, i, item.name, near, outs, hr)

    def run_denoise(self) -> None:
        methods = self.denoise_methods()
        items = self.run._images(GREY_SET)
        for i, item in enumerate(items):
            if self._out_of_time():
                return
            clean = grey(self.run._load(item)).astype(np.float64)
            from .quality import noisy_image

            noisy = noisy_image(clean, SIGMA, self.run.cfg.seed, GREY_DATASET, i)

            def score(out: np.ndarray) -> dict[str, float]:
                return dict(psnr=psnr(out, clean), ssim=ssim(out, clean))

            outs = self._measure(GREY_DATASET, DENOISE_SETTING, methods, i, item.name, (noisy, float(SIGMA)), score,
                                 _grey_of, len(items))
            if outs:
                self.run._keep_example("zoo_denoise", DENOISE_SETTING, i, item.name,
                                       np.repeat(quantize(noisy)[..., None], 3, 2),
                                       {k: np.repeat(v[..., None], 3, 2) for k, v in outs.items()},
                                       np.repeat(clean.astype(np.uint8)[..., None], 3, 2))


def listing_notes(engine: ZooEngine) -> list[dict]:
    """What the engine says about each linked checkpoint (architecture, parameters, ...), for the report."""
    keep = ("architecture", "purpose", "scale", "channels", "parameters", "size", "dtype", "error")
    return [{"name": n, **{k: e[k] for k in keep if k in e}} for n, e in engine.listing.items() if n != "builtin"]


def run_zoo(run: "QualityRun") -> None:
    """The zoo task: grey denoising, then SR (the long part last, so a budget cuts only BSD100);
    skips with the reason what it cannot run."""
    from .quality import log as qlog

    cfg = run.cfg
    zoo_dir = Path(cfg.zoo_models) if cfg.zoo_models else DEFAULT_ZOO
    wanted = tuple(cfg.zoo_checkpoints) if cfg.zoo_checkpoints else NAMES
    for n in sorted(set(wanted) - set(NAMES)):
        run.skipped.append({"task": "zoo", "method": n, "reason": f"unknown checkpoint; known: {', '.join(NAMES)}"})
    checkpoints, skipped = available_checkpoints(zoo_dir, wanted)
    for s in skipped:
        run.skipped.append(s)
        qlog(f"[zoo] {s['method']} skipped: {s['reason']}")
    try:
        engine = ZooEngine(Path(cfg.models) if cfg.models else DEFAULT_MODELS, zoo_dir, checkpoints, cfg.device)
    except (OursUnavailable, OSError) as exc:
        run.skipped.append({"task": "zoo", "method": "*", "reason": f"engine for the zoo rows: {exc}"})
        qlog(f"[zoo] skipped: {exc}")
        return
    broken = [n for n, e in engine.listing.items() if e.get("error")]
    for n in broken:
        run.skipped.append({"task": "zoo", "method": n, "reason": engine.listing[n]["error"]})
        qlog(f"[zoo] {n} unusable: {engine.listing[n]['error']}")
    zr = ZooRun(run, engine, [c for c in checkpoints if c.name not in broken],
                Progress(Path(cfg.out) / PROGRESS, cfg.zoo_resume))
    parts = cfg.zoo_parts or PARTS
    try:
        if "denoise" in parts:
            zr.run_denoise()
        if "sr" in parts and not zr.stopped:
            zr.run_sr()
    finally:
        import torch

        run.meta_extra["zoo"] = {"checkpoints": listing_notes(engine), "models_dir": zoo_dir.name,
                                 "stopped": zr.stopped, "torch_threads": torch.get_num_threads()}
        engine.close()
    if zr.stopped:
        qlog(f"[zoo] stopped early: {zr.stopped}")
