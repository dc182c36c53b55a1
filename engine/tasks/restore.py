"""`restore`: denoise, remove JPEG artefacts, deblur, upscale and repair scratches.

One generative prior does all of it: the built-in EDM denoiser, used either directly (Gaussian
noise: one call at the noise level, the MMSE estimate) or inside plug-and-play loops with a
data-consistency step for a known degradation (diffusion/pnp.py with the operators of
diffusion/operators.py and jpeg.py: JPEG quantisation intervals, blur, MATLAB-bicubic
downsampling), or as an inpainter through its conditioning channels (repair).

Several tasks chain in the order the degradations are best undone: repair (defects sit on
top of everything) -> jpeg (the last thing that happened to the file) -> denoise -> deblur
(needs clean input) -> upscale (works best from a clean, sharp image). `auto` measures the
image (restore_analysis.py: noise, JPEG quality, blur, scratches, dust and hairs) and runs
repair, jpeg or denoise, and deblur as needed; meta says what it found and applied
(restore_report.py), and says so when it found nothing.

Whole images are processed in overlapping tiles (tiling.py), so memory stays bounded; an
optional mask restricts the work to its area and the result is blended in through the
feathered mask, leaving every other pixel bit for bit as it was.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from .. import images
from ..devices import work_side
from ..diffusion import pnp
from ..diffusion.denoiser import Denoiser, model_fn
from ..diffusion.jpeg import JPEGConstraint
from ..diffusion.operators import Blur, Downsample, Identity, Operator, gaussian_kernel, motion_kernel
from ..diffusion.schedule import DenoiseFn
from ..errors import TOO_LARGE
from ..tiling import run_tiled, tile_count
from .base import InputSpec, JobContext, Operation, ParamSpec
from .noise_model import REFINE_SIGMA, NoiseModel, in_range, mirrored_mean, squeeze, stabilise, unsqueeze, unstabilise
from .restore_analysis import analyse, applied, noise_model
from .restore_report import summary
from .jobtools import Sampling, Stages, make_generator, randn, resolve_seed
from .specs import DENOISERS, ZOO, Pixels, Require, split_list
from ..fills import smooth_fill

ORDER = ("repair", "jpeg", "denoise", "deblur", "upscale")
TASKS = ORDER + ("auto",)
# Steps per task when `steps` is null. Denoise is a single network call (the 2 s budget for
# 512x512 on a laptop CPU; three on clipped or signal-dependent noise, noise_model.MIRRORS and
# REFINE_SIGMA);
# the others are plug-and-play loops (pnp.PNP_DEFAULTS).
DEFAULT_STEPS = {"denoise": 1, "jpeg": 4, "deblur": 8, "upscale": 6, "repair": 4}
OVERLAP = 32
DEBLUR_MIN_NOISE = 4.0  # after a repair, deblur assumes at least this noise: a faint rim left must not ring
REPAIR_SIGMA = 0.3  # repair starts sampling here over a smooth pre-fill: thin holes need little
REPAIR_MARGIN = 1  # px a detected mask grows by before the repair (one more when deblur follows)
# Plug-and-play knobs over pnp.PNP_DEFAULTS, tuned on central crops of six BSDS500
# training images (MATLAB-bicubic LR made with operators.Downsample, Y-PSNR, scale-pixel border):
#   x2 bicubic 31.23 -> 33.00 dB (PNP_DEFAULTS at 6 steps) -> 33.09 dB (these knobs)
#   x4 bicubic 27.92 -> 28.74 dB -> 28.78 dB
UPSCALE_KNOBS = {"lam": 0.5, "sigma_end": 0.05}


def jpeg_start_sigma(quality: int) -> float:
    """Noise level the JPEG loop starts at: coarser quantisation needs a stronger prior.
    (Six BSDS500 training crops, RGB PSNR, 4 steps: q10 25.03 -> 25.84 dB at 0.1, 26.12 dB at
    0.2; q20 27.33 -> 28.30 at 0.1, 28.26 at 0.2; q40 29.56 -> 30.52 at 0.1, 30.29 at 0.2.)"""
    return float(min(0.25, max(0.1, 2.0 / max(int(quality), 1))))


def parse_tasks(text: str) -> list[str]:
    """A checked `task` value ('jpeg, denoise') -> ['jpeg', 'denoise'] in processing order."""
    names = split_list(text)
    return names if names == ["auto"] else [t for t in ORDER if t in names]


class _Job:
    """State shared by the stages of one restore: model, device, tiling, progress."""

    def __init__(self, den: Denoiser, ctx: JobContext, params: dict[str, Any], seed: int):
        self.den, self.ctx, self.params, self.seed = den, ctx, params, seed
        self.device = ctx.device
        self.tile = params["tile"] or work_side("restore", self.device)
        self.stages: Stages | None = None

    def denoise_fn(self) -> DenoiseFn:
        """D(x, sigma) with nothing known: the model as a blind denoiser."""
        return model_fn(self.den, self.device)

    def restore(self, tile: torch.Tensor, operator: Operator, noise_sigma: float, task: str, steps: int,
                callback: Callable[[dict], None], **overrides) -> torch.Tensor:
        """Plug-and-play restoration of one tile on the model's schedule."""
        return pnp.restore(self.denoise_fn(), tile, operator, noise_sigma, task, self.den.descriptor.sigmas,
                           steps=steps, callback=callback, **overrides)

    def tiled(self, stage: str, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, steps_per_tile: int,
              scale: int = 1, align: int = 1, overlap: int = OVERLAP) -> torch.Tensor:
        """Run `fn` over tiles of x (CPU, [-1, 1]); each tile runs on the job's device."""
        tile_in = max(64, self.tile // scale)
        ov = max(8, overlap // scale)
        done = [0]

        def on_tile(tile: torch.Tensor) -> torch.Tensor:
            out = fn(tile.to(self.device)).float().cpu()
            done[0] += 1
            self.report(stage, done[0] * steps_per_tile, out)
            return out

        return run_tiled(on_tile, x, tile_in, ov, scale=scale, align=align)

    def report(self, stage: str, step: int, current: torch.Tensor | None = None) -> None:
        frame = None if current is None else (lambda: images.preview(images.from_model(current[:1])[0]))
        self.stages.report(stage, step, frame)

    def step_callback(self, stage: str, tiles_done: Callable[[], int], steps: int) -> Callable[[dict], None]:
        """Sampler callback: progress (and cancellation) after every step inside a tile."""
        def cb(info: dict) -> None:
            self.report(stage, tiles_done() * steps + info["step"], info["denoised"])
        return cb


def _plan(tasks: list[str], h: int, w: int, job: _Job, params: dict[str, Any]) -> dict[str, int]:
    plan: dict[str, int] = {"analyse": 1}
    scale = params["scale"]
    for t in tasks:
        steps = _steps(t, params)
        if t == "upscale":
            n = tile_count(h, w, max(64, job.tile // scale), max(8, OVERLAP // scale))
        else:
            n = tile_count(h, w, job.tile, OVERLAP, 16 if t == "jpeg" else 1)
        plan[t] = n * steps
    plan["composite"] = 1
    return plan


def _steps(task: str, params: dict[str, Any]) -> int:
    return int(params["steps"] or DEFAULT_STEPS[task])


# ---------------------------------------------------------------- the stages


def _denoise(job: _Job, x: torch.Tensor, noise: NoiseModel) -> torch.Tensor:
    """One call D(y, sigma) per tile (steps > 1: a short plug-and-play refinement).

    Noise other than additive unclipped Gaussian (noise_model.py) is first made Gaussian by
    the variance-stabilising transform, and the result mapped back by its unbiased inverse;
    there the call is a mean over mirrored copies (noise_model.MIRRORS), followed by a light one
    (noise_model.REFINE_SIGMA)."""
    sigma255 = noise.sigma
    if not noise.plain:
        z, sigma255 = squeeze(*stabilise((x.double() + 1.0) * 127.5, noise))
        x = (z / 127.5 - 1.0).float()
    sigma = 2.0 * sigma255 / 255.0  # images live in [-1, 1]
    fn, steps = job.denoise_fn(), _steps("denoise", job.params)
    counter = [0]

    def run(tile: torch.Tensor) -> torch.Tensor:
        if steps == 1:
            s = torch.tensor(sigma, device=tile.device)
            if noise.plain:
                out = fn(tile, s)
            else:
                out = mirrored_mean(fn, tile, s)
                out = fn(out, torch.tensor(sigma * REFINE_SIGMA, device=tile.device))
        else:
            cb = job.step_callback("denoise", lambda: counter[0], steps)
            out = job.restore(tile, Identity(), sigma, "denoise", steps, cb)
        counter[0] += 1
        return out

    out = job.tiled("denoise", run, x, steps)
    if noise.plain:
        return out
    return (unstabilise(unsqueeze((out.double() + 1.0) * 127.5), noise) / 127.5 - 1.0).float()


def _jpeg(job: _Job, x: torch.Tensor, quality: int, offset: tuple[int, int]) -> torch.Tensor:
    """Plug-and-play inside the quantisation intervals of the JPEG the image came from."""
    steps = _steps("jpeg", job.params)
    # put the JPEG block grid at (0, 0): pad by the grid origin's complement
    py, px = (-offset[0]) % 8, (-offset[1]) % 8
    h, w = x.shape[-2:]
    xp = torch.nn.functional.pad(x, (px, 0, py, 0), mode="replicate") if (py or px) else x
    counter = [0]

    def run(tile: torch.Tensor) -> torch.Tensor:
        op = JPEGConstraint(tile, quality=quality, subsampling="4:2:0", slack=0.0)
        cb = job.step_callback("jpeg", lambda: counter[0], steps)
        out = job.restore(tile, op, 0.0, "jpeg", steps, cb, sigma_start=jpeg_start_sigma(quality))
        counter[0] += 1
        return out

    out = job.tiled("jpeg", run, xp, steps, align=16)
    return out[..., py:py + h, px:px + w]


def _blur_operator(blur: dict[str, Any]) -> Blur:
    """The blur to undo: {'blur_sigma'} (Gaussian) or {'motion_length', 'motion_angle'}."""
    if "blur_sigma" in blur:
        kernel = gaussian_kernel(blur["blur_sigma"])
    else:
        kernel = motion_kernel(blur["motion_length"], blur["motion_angle"])
    return Blur(kernel.float(), boundary="reflect")


def _deblur(job: _Job, x: torch.Tensor, blur: dict[str, Any], noise255: float) -> torch.Tensor:
    op = _blur_operator(blur)
    steps = _steps("deblur", job.params)
    radius = max(op.rh, op.rw)
    counter = [0]

    def run(tile: torch.Tensor) -> torch.Tensor:
        cb = job.step_callback("deblur", lambda: counter[0], steps)
        out = job.restore(tile, op, 2.0 * noise255 / 255.0, "deblur", steps, cb)
        counter[0] += 1
        return out

    return job.tiled("deblur", run, x, steps, overlap=max(OVERLAP, 4 * radius))


def _upscale(job: _Job, x: torch.Tensor, scale: int, noise255: float) -> torch.Tensor:
    """Bicubic start, then denoise / project onto {x : bicubic_down(x) = y} at falling sigmas."""
    op = Downsample(scale)
    steps = _steps("upscale", job.params)
    counter = [0]

    def run(tile: torch.Tensor) -> torch.Tensor:
        cb = job.step_callback("upscale", lambda: counter[0], steps)
        out = job.restore(tile, op, 2.0 * noise255 / 255.0, "upscale", steps, cb, **UPSCALE_KNOBS)
        counter[0] += 1
        return out

    return job.tiled("upscale", run, x, steps, scale=scale)


def _repair(job: _Job, x: torch.Tensor, defects: np.ndarray) -> torch.Tensor:
    """Inpaint the defect pixels with the inpaint op's sampler (conditioning channels plus
    data consistency on the known pixels): a smooth pre-fill, lightly noised, then a short
    run at full resolution. Tiles without defects are returned as they are."""
    steps = _steps("repair", job.params)
    packed = torch.cat([x, torch.from_numpy(defects.astype(np.float32))[None, None]], dim=1)
    counter = [0]

    def run(tile: torch.Tensor) -> torch.Tensor:
        img, hard = tile[:, :3], (tile[:, 3:4] > 0.5).float()
        index = counter[0]
        counter[0] += 1
        if not bool(hard.any()):
            return img
        prefill = smooth_fill(images.from_model(img)[0], hard[0, 0].cpu().numpy() > 0)
        start = images.to_model(prefill, img.device)
        gen = make_generator(job.seed + 7919 * index)  # per tile, so tiling order fixes the noise
        sigmas = job.den.descriptor.sigmas.schedule(steps, REPAIR_SIGMA, img.device)
        sampling = Sampling(job.den, job.device, img, hard, gen, "dpmpp_2m",
                            _Offset(job.stages, "repair", index * steps), "repair")
        out = sampling.run(start + randn(tuple(start.shape), gen, img.device) * sigmas[0], sigmas)
        return img + hard * (out - img)

    return job.tiled("repair", run, packed, steps)


def _keep_colour(before: torch.Tensor, after: torch.Tensor, hole: np.ndarray) -> torch.Tensor:
    """Repaired pixels keep the repair's luma and take their chroma from the known pixels
    around them: a monochrome or sepia photo gets no false colour, and a colour photo gets
    the colour of the surface under the mark (a scratch has none of its own)."""
    old, new = images.from_model(before)[0], images.from_model(after)[0]
    w = images.LUMA
    chroma = old - (old @ w)[..., None]  # RGB offsets from grey, zero on a monochrome photo
    filled = smooth_fill(chroma, hole)
    out = new.copy()
    out[hole] = np.clip((new @ w)[hole][:, None] + filled[hole], 0.0, 1.0)
    return images.to_model(out, "cpu")


class _Offset:
    """Stages adaptor: the sampler inside tile k reports step k*steps + i of the stage."""

    def __init__(self, stages: Stages, stage: str, offset: int):
        self.stages, self.stage, self.offset = stages, stage, offset

    def report(self, stage: str, step: int, preview=None) -> None:
        self.stages.report(self.stage, self.offset + step, preview)


# ---------------------------------------------------------------- the operation


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    if ctx.models.is_zoo(params["model"]):
        from . import restore_zoo  # a checkpoint of another project: its own single-call path
        return restore_zoo.run(inputs, params, ctx)
    t0 = time.perf_counter()
    image, mask, tasks = inputs["image"], inputs.get("mask"), parse_tasks(params["task"])
    seed = resolve_seed(params["seed"])
    h_full, w_full = image.shape[:2]
    f = images.to_float(image)
    rgb, alpha = images.split_alpha(f)
    m = images.mask_to_float(mask) if mask is not None else None
    den = ctx.models.get(params["model"])
    box = images.work_area(m, stride=den.descriptor.stride) if m is not None else images.Box(0, 0, h_full, w_full)
    meta: dict[str, Any] = {"seed": seed, "model": params["model"], "requested": params["task"]}
    scale = params["scale"] if ("upscale" in tasks) else 1

    if box is None:  # an empty mask: nothing to restore
        ctx.progress(1, 1, "composite")
        out = _resize_output(image, scale) if scale > 1 else image.copy()
        meta.update(tasks=[], empty_mask=True, found={}, applied=[], summary=summary({}, []) + " (empty selection)",
                    timings={"total": 0.0})
        return {"image": out}, meta

    crop = rgb[box.slices]
    # Measure before anything changes the pixels: noise, JPEG grid, blur and defects of the input.
    t_est = time.perf_counter()
    an = analyse(crop * 255.0, tasks, params, m[box.slices] if m is not None else None)
    t_est = time.perf_counter() - t_est
    tasks, sigma, quality = an.tasks, an.sigma, an.quality

    job = _Job(den, ctx, params, seed)
    job.stages = stages = Stages(ctx, _plan(tasks, box.h, box.w, job, params))
    stages.report("analyse", 1)
    stages.done("analyse")

    x = images.to_model(crop, "cpu")
    defect_pixels = None
    for task in tasks:
        if task == "repair":
            defects = m[box.slices] > 0 if params["defects"] == "mask" else an.defects
            if params["defects"] == "detect":  # over the marks' faint rims; deblur would ring around any left
                defects = images.dilate(defects, REPAIR_MARGIN + ("deblur" in tasks))
            defect_pixels = int(defects.sum())
            if defect_pixels:
                x = _keep_colour(x, _repair(job, x, defects), defects)
        elif task == "jpeg":
            x = _jpeg(job, x, int(quality), an.offset)
        elif task == "denoise":
            x = _denoise(job, x, noise_model(an, in_range(crop)))
        elif task == "deblur":
            x = _deblur(job, x, an.blur, max(float(an.sigma_est or 0.0), DEBLUR_MIN_NOISE if "repair" in tasks else 0.0))
        elif task == "upscale":
            x = _upscale(job, x, scale, float(an.sigma_est or 0.0))
        x = x.clamp(-1, 1)
        stages.done(task)

    out = _compose(image, rgb, alpha, images.from_model(x)[0], box, m, scale, params["feather"])
    stages.report("composite", 1)
    stages.done("composite")
    steps = applied(an, scale, defect_pixels)
    meta.update(tasks=tasks, estimates=an.estimates(), found=an.found, applied=steps,
                summary=summary(an.found, steps), skipped=an.skipped, scale=scale,
                timings={"estimate": round(t_est, 3), **stages.timings(), "total": round(time.perf_counter() - t0, 3)})
    if "denoise" in tasks:
        meta["sigma"] = round(float(sigma), 2)
        if an.gain:
            meta["gain"] = round(float(an.gain), 3)
    if "jpeg" in tasks:
        meta["quality"] = int(quality)
    if defect_pixels is not None:
        meta["defect_pixels"] = defect_pixels
    if m is not None:
        meta["work_area"] = [box.y0, box.x0, box.y1, box.x1]
    return {"image": out}, meta


def _resize_output(image: np.ndarray, scale: int) -> np.ndarray:
    """Plain bicubic enlargement in the image's own depth (the base outside a mask)."""
    f = images.to_float(image)
    t = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None]
    big = images.resize(t, (image.shape[0] * scale, image.shape[1] * scale), "bicubic").clamp(0, 1)
    return images.from_float(big[0].permute(1, 2, 0).numpy(), image.dtype)


def _compose(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray | None, result: np.ndarray, box: images.Box,
             m: np.ndarray | None, scale: int, feather: float | None) -> np.ndarray:
    """Put the restored work area back. Without a mask the result is the whole output (alpha
    kept exactly, or enlarged); with one it is blended in through the feathered mask."""
    if scale == 1:
        gen = rgb.copy()
        gen[box.slices] = result
        if m is None:
            out = image.copy()
            out[..., :3] = images.from_float(gen, image.dtype)
            return out
        return images.composite(image, gen, m, feather, match_colors=False)
    base = _resize_output(image, scale)
    sb = images.Box(box.y0 * scale, box.x0 * scale, box.y1 * scale, box.x1 * scale)
    gen = images.to_float(base)[..., :3]
    gen[sb.slices] = result
    if m is None:
        base[..., :3] = images.from_float(gen, image.dtype)
        return base
    m_big = np.repeat(np.repeat(m, scale, axis=0), scale, axis=1)
    f = None if feather is None else feather * scale
    return images.composite(base, gen, m_big, f, match_colors=False)


OPERATION = Operation(
    name="restore",
    doc="Denoise, remove JPEG artefacts, deblur, upscale x2/x4 or repair scratches and dust; "
        "task=auto measures the image and picks. Any size (tiled); an optional mask limits the work.",
    inputs=(
        InputSpec("image", doc="the layer, RGB or RGBA (alpha is kept, or enlarged with the image)"),
        InputSpec("mask", required=False, channels=(1,), same_size_as="image", dtypes=("u8",),
                  doc="optional selection (255 = restore here); with defects=mask, the defects to repair"),
    ),
    params=(
        ParamSpec("task", "multi", "auto", "comma list of denoise, jpeg, upscale, deblur, repair (run in the order "
                  "repair, jpeg, denoise, deblur, upscale), or auto (measure noise, JPEG quality, blur, scratches, dust and hairs, and pick)",
                  choices=TASKS, exclusive=("auto",)),
        ParamSpec("sigma", "float", None, "noise standard deviation in 8-bit levels (0..255); null = measure it",
                  min=0.0, max=100.0, nullable=True),
        ParamSpec("gain", "float", None, "denoise: signal-dependent (Poisson, camera) noise, the variance added "
                  "per level of brightness: var = gain * level + sigma^2 (0..255 units); null = 0 when sigma is "
                  "given, else measured with it", min=0.0, max=50.0, nullable=True),
        ParamSpec("quality", "int", None, "JPEG quality the image was saved with (1..100); null = measure it",
                  min=1, max=100, nullable=True),
        ParamSpec("scale", "enum", 2, "upscale factor: 2 or 4", choices=(2, 4)),
        ParamSpec("blur_sigma", "float", None, "deblur: Gaussian blur sigma in pixels; null (and no "
                  "motion_length) = measure the blur", min=0.1, max=20.0,
                  nullable=True),
        ParamSpec("motion_length", "float", None, "deblur: motion blur length in pixels", min=1.0, max=100.0,
                  nullable=True),
        ParamSpec("motion_angle", "float", 0.0, "deblur: motion direction in degrees (0 = horizontal)",
                  min=-360.0, max=360.0),
        ParamSpec("defects", "enum", "detect", "repair: detect scratches and dust automatically (inside the mask if "
                  "one is sent), or repair exactly the mask's pixels", choices=("detect", "mask")),
        ParamSpec("sensitivity", "float", 0.5, "repair: detector sensitivity, higher finds fainter marks",
                  min=0.0, max=1.0),
        ParamSpec("steps", "int", None, "denoiser calls per tile; null = per-task default "
                  f"({', '.join(f'{k} {v}' for k, v in DEFAULT_STEPS.items())})", min=1, max=100,
                  nullable=True, limit_code=TOO_LARGE, cap="max_steps"),
        ParamSpec("seed", "int", None, "random seed (repair samples); null = random, returned in meta",
                  min=0, max=2**31 - 1, nullable=True),
        ParamSpec("model", "model", "builtin", "installed model name (`sfumato models` lists them); a zoo "
                  "model (another project's checkpoint) does the tasks it lists in welcome.models[].serves",
                  model_kinds=DENOISERS + (ZOO,)),
        ParamSpec("tile", "int", None, "tile side in output pixels; null = device default (CPU 576, GPU 1088)",
                  min=64, max=4096, nullable=True),
        ParamSpec("feather", "float", None, "mask edge feather in pixels; null = auto, 0 = hard edge",
                  min=0.0, max=64.0, nullable=True),
    ),
    rules=(
        Require(("params.blur_sigma", "params.motion_length"), "deblur takes blur_sigma (Gaussian) or "
                "motion_length (+ motion_angle), not both; neither = measure the blur", least=0, most=1,
                when=(("task", "deblur"),)),
        Require(("inputs.mask",), "defects=mask repairs the pixels of the mask input; send a mask",
                when=(("task", "repair"), ("defects", "mask"))),
        Pixels(("inputs.image", "params.scale", "params.scale"), "params.scale", when=(("task", "upscale"),),
               doc="the upscaled output"),
    ),
    run=run,
)
