"""`python -m bench quality`: ours against classical peers and published tables.

Protocols (the published tables' conventions, see ../shared/data/README.md):
- denoise: white Gaussian noise of std sigma (0..255 scale), seeded per image, added to the
  clean image and NOT clipped; RGB PSNR/SSIM of the 8-bit result over the whole image.
- sr: MATLAB-bicubic LR files; HR cropped to a multiple of the scale; PSNR/SSIM on the
  BT.601 Y channel after shaving `scale` pixels on every side.
- inpaint: seeded masks (bench/masks.py); hole pixels are zeroed for every method;
  PSNR and SSIM inside the hole, plus a set-level SWD of Laplacian-pyramid patches.
- jpeg: Pillow JPEG at quality q (4:2:0); RGB PSNR/SSIM and PSNR-B (Y) against the clean
  image, with the plain decoded JPEG as the baseline.
- removal, outpaint: large holes (object-shaped masks; the right quarter), judged by texture
  ratio, patch distance, hole PSNR and (outpaint) seam ratio: bench/completion.py.
- texture, pattern: textures grown from painting crops and drawn stripes, checks and bricks, and
  tiles made seamless, judged by seam ratio, structure kept and stripe period: bench/texture.py.
- stylize: paintings x photos, style and content distance: bench/stylize_task.py.
- realnoise: clipped 8-bit Gaussian and Poisson-Gaussian noise, ours against CBM3D on the
  same files: bench/realnoise.py.
Ours runs through the engine (bench/ours.py); peers run in this process. Every output is
rounded to 8 bits before it is measured, as saved results would be.
"""
from __future__ import annotations

import io
import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from . import masks as masklib
from .datasets import DataError, DataRoot, Item, crop_to_multiple
from .metrics import PatchSWD, crop_border, laplacian_pyramid, psnr, psnr_b, quantize, rgb_to_y, ssim
from .ours import Ours, OursUnavailable
from .peers import Peer, all_peers, package_version

TASKS = ("denoise", "sr", "inpaint", "jpeg", "removal", "outpaint", "texture", "pattern", "stylize", "oldphoto", "realnoise", "zoo")
OURS = "Sfumato (ours)"
QUICK_CROP = 128  # quick mode measures centre crops: it checks the code paths, not the figures
QUICK_IMAGES = 2  # ... of this many images per set


@dataclass
class QualityConfig:
    """Everything a quality run depends on; stored in quality.json for reproducibility."""

    data: str
    out: str
    quick: bool = False
    tasks: tuple[str, ...] = TASKS
    limit: int | None = None
    bm3d_limit: int | None = None
    bm3d_limit_pg: int | None = None  # realnoise's Poisson-Gaussian level (default bm3d_limit)
    patchmatch_limit: int | None = None
    models: str | None = None
    device: str = "cpu"
    seed: int = 0
    mask_kinds: tuple[str, ...] = masklib.KINDS
    ours_params: dict[str, dict] = field(default_factory=dict)
    sweep_steps: tuple[int, ...] = (2, 4, 8, 16, 32)
    sweep_images: int = 6
    grids: bool = True
    local_grids: bool = True
    zoo_models: str | None = None  # folder of the zoo task's checkpoints (bench/zoo_task.py)
    zoo_checkpoints: tuple[str, ...] = ()  # which of them (default all)
    zoo_budget_min: float | None = None  # stop starting new zoo images after this long
    zoo_resume: bool = False  # reuse the per-image figures of an interrupted zoo run
    zoo_parts: tuple[str, ...] = ()  # denoise, sr (default both)

    def settings(self) -> dict[str, Any]:
        if self.quick:
            return {"denoise": [("CBSD68", 25)], "sr": [("Set5", 2)], "inpaint": ["box64"],
                    "jpeg": [10], "images": min(QUICK_IMAGES, self.limit) if self.limit else QUICK_IMAGES}
        return {"denoise": [(d, s) for d in ("CBSD68", "McMaster") for s in (15, 25, 50)],
                "sr": [(d, s) for d in ("Set5", "BSD100") for s in (2, 4)],
                "inpaint": list(self.mask_kinds), "jpeg": [10, 20, 30], "images": self.limit}


# ---- result accumulation ---------------------------------------------------------------------
@dataclass
class Cell:
    """One table cell group: a method on one (task, dataset, setting), per-image values."""

    task: str
    dataset: str
    setting: str
    method: str
    kind: str  # ours | peer | baseline
    package: str = ""
    note: str = ""
    images: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # set-level metrics (SWD)

    def add(self, image: str, seconds: float, **metrics: float) -> None:
        self.images.append(image)
        self.seconds.append(seconds)
        for k, v in metrics.items():
            self.values.setdefault(k, []).append(float(v))

    def row(self) -> dict[str, Any]:
        out = {"task": self.task, "dataset": self.dataset, "setting": self.setting, "method": self.method,
               "kind": self.kind, "package": self.package, "note": self.note, "n": len(self.images),
               "seconds_per_image": float(np.mean(self.seconds)) if self.seconds else None,
               "per_image": {"images": self.images, **{k: [round(x, 4) for x in v] for k, v in self.values.items()}}}
        for k, v in self.values.items():
            out[k] = float(np.mean(v))
        out.update(self.extra)
        return out


class Recorder:
    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str, str], Cell] = {}

    def cell(self, task: str, dataset: str, setting: str, method: str, kind: str,
             package: str = "", note: str = "") -> Cell:
        key = (task, dataset, setting, method)
        if key not in self.cells:
            self.cells[key] = Cell(task, dataset, setting, method, kind, package, note)
        return self.cells[key]

    def rows(self, task: str) -> list[dict]:
        return [c.row() for c in self.cells.values() if c.task == task]


@dataclass
class Method:
    """A contestant: ours or a peer, as a uniform callable."""

    name: str
    kind: str
    fn: Callable[..., np.ndarray]
    package: str = ""
    note: str = ""
    limit: int | None = None  # evaluate only the first N images (slow peers)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _timed(fn: Callable[..., np.ndarray], *args: Any) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _peer_method(p: Peer, limit: int | None = None) -> Method:
    return Method(p.name, "peer", p.fn, p.package, p.note, limit)


def _rng(seed: int, *parts: Any) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(x).encode()) for x in parts])


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode with Pillow (4:2:0, baseline) and decode: the degraded input of the JPEG task."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def noisy_image(clean: np.ndarray, sigma: float, seed: int, dataset: str, index: int) -> np.ndarray:
    """Clean image plus seeded white Gaussian noise, float on 0..255, not clipped."""
    noise = _rng(seed, "noise", dataset, sigma, index).standard_normal(clean.shape) * sigma
    return clean.astype(np.float64) + noise


def hole_input(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image every inpainting method receives: the hole's pixels zeroed."""
    out = img.copy()
    out[mask > 127] = 0
    return out


# ---- the runner ------------------------------------------------------------------------------
class QualityRun:
    def __init__(self, cfg: QualityConfig, ours: Ours | None, ours_reason: str = ""):
        self.cfg = cfg
        self.data = DataRoot(cfg.data)
        self.ours = ours
        self.ours_reason = ours_reason
        self.rec = Recorder()
        self.peers = {p.name: p for p in all_peers()}
        self.skipped: list[dict] = []
        self.examples: dict[str, list[dict]] = {}  # task -> first images, for the local grids
        self.task_meta: dict[str, dict] = {}
        self.meta_extra: dict[str, dict] = {}  # a task's own facts for task_meta (zoo: checkpoints, early stop)

    # ---- helpers ----
    def _ours_params(self, task: str) -> dict:
        return dict(self.cfg.ours_params.get(task, {}))

    def _ours_method(self, task: str, op: str, fn: Callable[..., np.ndarray]) -> Method | None:
        if self.ours is None:
            self.skipped.append({"task": task, "method": OURS, "reason": self.ours_reason})
            return None
        try:
            self.ours.require(op)
        except OursUnavailable as exc:
            self.skipped.append({"task": task, "method": OURS, "reason": str(exc)})
            log(f"[{task}] ours skipped: {exc}")
            return None
        params = self._ours_params(task)
        note = ", ".join(f"{k}={v}" for k, v in params.items()) or "engine defaults"
        return Method(OURS, "ours", lambda *a: fn(*a, **params), "", note)

    def _peer_methods(self, task: str) -> list[Method]:
        methods = []
        for p in self.peers.values():
            if p.task != task:
                continue
            if not p.available:
                self.skipped.append({"task": task, "method": p.name, "reason": p.reason})
                continue
            if p.slow and self.cfg.quick:
                self.skipped.append({"task": task, "method": p.name,
                                     "reason": "slow peer (about 10 s per call even on a small crop), skipped in quick mode"})
                continue
            limit = {"CBM3D": self.cfg.bm3d_limit, "PatchMatch": self.cfg.patchmatch_limit}.get(p.name)
            methods.append(_peer_method(p, limit))
        return methods

    def _keep_example(self, task: str, setting: str, index: int, name: str, inp: np.ndarray,
                      outputs: dict[str, np.ndarray], gt: np.ndarray, **extra: Any) -> None:
        if not self.cfg.local_grids or index >= 3:
            return
        self.examples.setdefault(task, []).append(
            {"setting": setting, "name": name, "input": inp, "outputs": outputs, "gt": gt, **extra})

    def _images(self, dataset: str) -> list[Item]:
        n = self.cfg.settings()["images"]
        return self.data.images(dataset, n)

    def _load(self, item: Item) -> np.ndarray:
        img = item.load()
        if not self.cfg.quick:
            return img
        h, w = img.shape[:2]
        c = min(QUICK_CROP, h, w)
        y0, x0 = (h - c) // 2, (w - c) // 2
        return np.ascontiguousarray(img[y0:y0 + c, x0:x0 + c])

    def _load_sr(self, item: Item, scale: int) -> tuple[np.ndarray, np.ndarray]:
        """(HR cropped to a multiple of scale, LR); quick mode: matching centre crops."""
        hr, lr = crop_to_multiple(item.load(), scale), item.load_lr()
        if not self.cfg.quick:
            return hr, lr
        c = min(QUICK_CROP // scale, *lr.shape[:2])
        y0, x0 = (lr.shape[0] - c) // 2, (lr.shape[1] - c) // 2
        return (np.ascontiguousarray(hr[y0 * scale:(y0 + c) * scale, x0 * scale:(x0 + c) * scale]),
                np.ascontiguousarray(lr[y0:y0 + c, x0:x0 + c]))

    # ---- tasks ----
    def run_denoise(self) -> None:
        methods = [m for m in [self._ours_method("denoise", "restore", self.ours.denoise if self.ours else None)] if m]
        methods += self._peer_methods("denoise")
        for dataset, sigma in self.cfg.settings()["denoise"]:
            items = self._images(dataset)
            setting = f"sigma={sigma}"
            for i, item in enumerate(items):
                clean = self._load(item)
                noisy = noisy_image(clean, sigma, self.cfg.seed, dataset, i)
                outs = self._run_methods("denoise", dataset, setting, methods, i, item.name, (noisy, sigma),
                                         lambda m, out: dict(psnr=psnr(out, clean), ssim=ssim(out, clean)))
                self._log_progress("denoise", dataset, setting, i, len(items), outs, clean)
                if dataset == self.cfg.settings()["denoise"][0][0] and sigma == 25:
                    self._keep_example("denoise", setting, i, item.name, quantize(noisy), outs, clean)

    def _run_methods(self, task: str, dataset: str, setting: str, methods: list[Method], i: int, name: str,
                     args: tuple, score: Callable[[Method, np.ndarray], dict[str, float]]) -> dict[str, np.ndarray]:
        """Run every method (within its image limit) on one input; record time and `score`'s metrics."""
        outs: dict[str, np.ndarray] = {}
        for m in methods:
            if m.limit is not None and i >= m.limit:
                continue
            out, sec = _timed(m.fn, *args)
            out = quantize(out)
            outs[m.name] = out
            self.rec.cell(task, dataset, setting, m.name, m.kind, m.package, m.note).add(name, sec, **score(m, out))
        return outs

    def run_sr(self) -> None:
        methods = [m for m in [self._ours_method("sr", "restore", self.ours.upscale if self.ours else None)] if m]
        methods += self._peer_methods("sr")
        for dataset, scale in self.cfg.settings()["sr"]:
            items = self.data.sr_pairs(dataset, scale, self.cfg.settings()["images"])
            setting = f"x{scale}"
            for i, item in enumerate(items):
                hr, lr = self._load_sr(item, scale)
                if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
                    raise DataError(f"{item.lr_path}: LR {lr.shape[:2]} x{scale} does not match HR {hr.shape[:2]}")
                y_hr = crop_border(rgb_to_y(hr), scale)

                def score(m: Method, out: np.ndarray) -> dict[str, float]:
                    if out.shape != hr.shape:
                        raise RuntimeError(f"{m.name} returned {out.shape} for x{scale} of {lr.shape}; expected {hr.shape}")
                    y = crop_border(rgb_to_y(out), scale)
                    return dict(psnr=psnr(y, y_hr), ssim=ssim(y, y_hr))

                outs = self._run_methods("sr", dataset, setting, methods, i, item.name, (lr, scale), score)
                self._log_progress("sr", dataset, setting, i, len(items), outs, hr)
                if dataset == "Set5" and scale == self.cfg.settings()["sr"][0][1]:
                    self._keep_example("sr", setting, i, item.name, lr, outs, hr)

    def run_inpaint(self) -> None:
        methods = [m for m in [self._ours_method("inpaint", "inpaint", self.ours.inpaint if self.ours else None)] if m]
        methods += self._peer_methods("inpaint")
        dataset = "CBSD68"
        items = self._images(dataset)
        kinds = self.cfg.settings()["inpaint"]
        swd = {(k, m.name): PatchSWD(seed=self.cfg.seed) for k in kinds for m in methods}
        for i, item in enumerate(items):
            clean = self._load(item)
            pyr = laplacian_pyramid(clean)
            for kind in kinds:
                mask = masklib.make_mask(kind, clean.shape[0], clean.shape[1], i, self.cfg.seed)
                inp = hole_input(clean, mask)

                def score(m: Method, out: np.ndarray) -> dict[str, float]:
                    swd[(kind, m.name)].add(out, clean, mask, reference_pyramid=pyr)
                    return dict(psnr=psnr(out, clean, mask), ssim=ssim(out, clean, mask))

                outs = self._run_methods("inpaint", dataset, kind, methods, i, item.name, (inp, mask), score)
                self._log_progress("inpaint", dataset, kind, i, len(items), outs, clean, mask)
                if kind in ("strokes_m", kinds[0]) and not any(
                        e["name"] == item.name for e in self.examples.get("inpaint", [])):
                    self._keep_example("inpaint", kind, i, item.name, inp, outs, clean, mask=mask)
        for (kind, name), acc in swd.items():
            cell = self.rec.cells.get(("inpaint", dataset, kind, name))
            if cell is not None:
                levels = acc.result()
                cell.extra["swd"] = levels.pop("avg")
                cell.extra["swd_levels"] = levels

    def run_jpeg(self) -> None:
        ours = self._ours_method("jpeg", "restore", self.ours.dejpeg if self.ours else None)
        methods = [Method("Decoded JPEG", "baseline", lambda img, q: img, f"pillow {package_version('pillow')}",
                          "the plain decoded JPEG (Pillow, 4:2:0): no restoration")]
        if ours:
            methods.insert(0, ours)
        dataset = "CBSD68"
        items = self._images(dataset)
        for q in self.cfg.settings()["jpeg"]:
            setting = f"q={q}"
            for i, item in enumerate(items):
                clean = self._load(item)
                decoded = jpeg_roundtrip(clean, q)
                outs = self._run_methods("jpeg", dataset, setting, methods, i, item.name, (decoded, q),
                                         lambda m, out: dict(psnr=psnr(out, clean), ssim=ssim(out, clean),
                                                             psnr_b=psnr_b(out, clean)))
                self._log_progress("jpeg", dataset, setting, i, len(items), outs, clean)
                if q == self.cfg.settings()["jpeg"][0]:
                    self._keep_example("jpeg", setting, i, item.name, decoded, outs, clean)

    def _log_progress(self, task: str, dataset: str, setting: str, i: int, n: int,
                      outs: dict[str, np.ndarray], ref: np.ndarray, mask: np.ndarray | None = None) -> None:
        parts = []
        for name, cell in self.rec.cells.items():
            if name[:3] == (task, dataset, setting) and cell.values.get("psnr"):
                parts.append(f"{cell.method} {np.mean(cell.values['psnr']):.2f}")
        log(f"[{task} {dataset} {setting}] {i + 1}/{n}  mean PSNR: " + ", ".join(parts))

    # ---- everything ----
    def run(self) -> dict:
        from .completion import run_task
        from .oldphoto import run_oldphoto
        from .realnoise import run_realnoise
        from .stylize_task import run_task as run_stylize
        from .texture import run_pattern, run_texture
        from .zoo_task import run_zoo

        runners = {"denoise": self.run_denoise, "sr": self.run_sr, "inpaint": self.run_inpaint, "jpeg": self.run_jpeg,
                   "removal": lambda: run_task(self, "removal"), "outpaint": lambda: run_task(self, "outpaint"),
                   "texture": lambda: run_texture(self), "pattern": lambda: run_pattern(self),
                   "stylize": lambda: run_stylize(self), "oldphoto": lambda: run_oldphoto(self),
                   "realnoise": lambda: run_realnoise(self),
                   "zoo": lambda: run_zoo(self)}
        for task in self.cfg.tasks:
            t0 = time.perf_counter()
            try:
                runners[task]()
            except DataError as exc:
                self.skipped.append({"task": task, "method": "*", "reason": str(exc)})
                log(f"[{task}] skipped: {exc}")
            self.task_meta[task] = {"seconds": round(time.perf_counter() - t0, 1), "quick": self.cfg.quick,
                                    "limit": self.cfg.limit, "when": time.strftime("%Y-%m-%d %H:%M"),
                                    **self.meta_extra.get(task, {})}
        from .sweep import steps_sweep  # imports this module: loaded once it is complete

        sweep = steps_sweep(self)
        return {"rows": {t: self.rec.rows(t) for t in self.cfg.tasks}, "sweep": sweep}


def _environment(ours: Ours | None) -> dict:
    import platform

    import torch

    env = {"python": platform.python_version(), "platform": platform.platform(terse=True),
           "machine": platform.machine(), "cpus": __import__("os").cpu_count(), "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(),
           "packages": {d: package_version(d) for d in ("numpy", "pillow", "opencv-python-headless", "bm3d",
                                                         "pypatchmatch", "scikit-image", "matplotlib")}}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    if ours is not None:
        env["model"] = ours.model_info()
    return env


def _portable(path: str) -> str:
    """The data path relative to the checkout when it is beside it (no machine paths in the report)."""
    import os

    repo = Path(__file__).resolve().parent.parent
    rel = os.path.relpath(Path(path).resolve(), repo)
    return rel if rel.count("..") <= 2 else Path(path).name


def merge_results(path: Path, new: dict, tasks: tuple[str, ...]) -> dict:
    """Results of the tasks just run replace those in an existing quality.json; others stay."""
    old: dict = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    merged = {"rows": dict(old.get("rows", {})), "task_meta": dict(old.get("task_meta", {})),
              "skipped": [s for s in old.get("skipped", []) if s.get("task") not in tasks]}
    for t in tasks:
        merged["rows"][t] = new["rows"].get(t, [])
        merged["task_meta"][t] = new["task_meta"].get(t, {})
    merged["skipped"] += new["skipped"]
    swept = {e.get("task") for e in new["sweep"]}  # a task's sweep replaces only that task's entries
    merged["sweep"] = [e for e in old.get("sweep", []) if e.get("task") not in swept] + new["sweep"]
    merged["config"] = new["config"]
    merged["environment"] = new["environment"]
    return merged


def run_quality(cfg: QualityConfig) -> dict:
    """Run the configured tasks, write quality.json, grids and the report; return the results."""
    from . import report

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data = DataRoot(cfg.data)
    if not data.exists():
        raise DataError(f"data root {data.root} not found; pass --data with the eval folder "
                        "(CBSD68/, McMaster/, Set5/, BSD100/, sr_lr_bicubic/)")
    t0 = time.perf_counter()
    ours: Ours | None
    reason = ""
    try:
        ours = Ours(cfg.models, cfg.device)
    except OursUnavailable as exc:
        ours, reason = None, str(exc)
        log(f"ours unavailable: {exc}")
    try:
        qr = QualityRun(cfg, ours, reason)
        res = qr.run()
        res["task_meta"] = qr.task_meta
        res["skipped"] = qr.skipped
        res["config"] = {k: v for k, v in asdict(cfg).items() if k not in ("out",)}
        res["config"]["data"] = _portable(cfg.data)
        res["environment"] = _environment(ours)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        merged = merge_results(out / "quality.json", res, cfg.tasks)
        merged["seconds"] = res["seconds"]
        (out / "quality.json").write_text(json.dumps(merged, indent=1))
        if cfg.grids:
            from .grids import sample_grids
            sample_grids(ours, out, quick=cfg.quick, seed=cfg.seed, tasks=cfg.tasks)
        if cfg.local_grids and qr.examples:
            from .grids import local_grids
            local_grids(qr.examples, out / "local")
    finally:
        if ours is not None:
            ours.close()
    report.write_report(out)
    log(f"quality: done in {time.perf_counter() - t0:.1f} s; report in {out / 'README.md'}")
    return merged
