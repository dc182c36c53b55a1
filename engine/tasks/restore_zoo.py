"""`restore` with a zoo model (another project's checkpoint, engine/zoo): one network call per tile.

The model does the task it was trained for (an x4 upscaler upscales by 4, a denoiser denoises);
asking it for anything else is a bad_param naming what it can do. The image goes through the
engine's tiling (overlapping tiles blended without seams, progress and cancellation after every
tile) and the same compositing as the built-in restore: alpha kept (or enlarged), 16-bit and
float images returned in their own depth, a mask limits the work to its area.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .. import images
from ..devices import device_kind, free_memory
from ..errors import BAD_PARAM, EngineError
from ..tiling import run_tiled, tile_count
from ..zoo.checkpoint import ZooModel, what_it_does
from .base import JobContext
from .jobtools import Stages

# Input-pixel tile sides, largest first, per device kind: a 256x256 image is one CPU tile (a CPU
# gains nothing from larger ones, and cancel and progress come between tiles); a GPU takes larger
# ones where its memory allows (see tile_side).
TILE_IN = {"cpu": (256, 128, 64), "cuda": (1024, 512, 256)}
BYTES_PER_IN_PIXEL = 8 * 2**10  # working memory a tile needs per input pixel: Real-ESRGAN x4plus on a
# 256x256 tile raised the engine's peak RSS by about 430 MiB (6.6 KiB a pixel; bench speed --sections zoo)
OVERLAP_IN = 16  # input pixels of overlap: the networks' context is wide, a narrow overlap shows seams


def tile_side(device: str, scale: int, requested: int | None) -> int:
    """Input tile side: `tile` (output pixels) when given, else the largest of the device's sides
    whose working memory fits in half of what the device has free (the largest where the system
    does not say: no /proc/meminfo)."""
    if requested:
        return max(OVERLAP_IN * 2 + 8, requested // scale)
    sides = TILE_IN[device_kind(device)]
    free = free_memory(device)
    if free is None:
        return sides[0]
    return next((s for s in sides if s * s * BYTES_PER_IN_PIXEL <= free // 2), sides[-1])


def check_tasks(name: str, zm: ZooModel, tasks: list[str], scale: int) -> list[str]:
    """The tasks to run ("auto" = the model's own); a task or scale the model cannot do is bad_param."""
    can = zm.tasks
    if not can:  # an inpainting model (or one no op runs): say which op it serves
        raise EngineError(BAD_PARAM, f"model {name!r} is a zoo model that does not restore ({what_it_does(zm.info)})",
                          "params.model")
    what = ", ".join(f"upscale with scale {zm.info['scale']}" if t == "upscale" else t for t in can) or "none"
    if tasks == ["auto"]:
        tasks = list(can)
    wrong = [t for t in tasks if t not in can]
    if wrong or not tasks:
        raise EngineError(BAD_PARAM, f"model {name!r} ({zm.info['architecture']}, {zm.info['purpose']}) cannot do "
                          f"task {', '.join(wrong) or 'auto'}; its restore tasks: {what}", "params.task")
    if "upscale" in tasks and scale != zm.info["scale"]:
        raise EngineError(BAD_PARAM, f"model {name!r} upscales x{zm.info['scale']}, not x{scale}: send "
                          f"scale {zm.info['scale']}", "params.scale")
    return tasks


def network(zm: ZooModel, device: str) -> tuple[Any, torch.dtype]:
    """The model on the job's device, in float32 on a CPU, in half or bfloat16 on a GPU when supported."""
    model = zm.model
    dtype = torch.float32
    if str(device).startswith("cuda"):
        dtype = torch.float16 if model.supports_half else torch.bfloat16 if model.supports_bfloat16 else dtype
    if model.device != torch.device(device) or model.dtype != dtype:
        model.to(torch.device(device)).to(dtype)
    return model, dtype


def apply(zm: ZooModel, x: torch.Tensor, device: str, tile: int, progress=None) -> torch.Tensor:
    """Run the model over tiles of x (1, 3, H, W) in [0, 1] on CPU; returns (1, 3, H*s, W*s) float32 on CPU.
    A one-channel model (greyscale denoisers) runs on each colour channel, and once on a grey
    picture (three equal channels: a scan of a black-and-white print is three times cheaper)."""
    model, dtype = network(zm, device)
    grey = zm.info["channels"] == 1
    if grey and x.shape[1] == 3 and torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2]):
        return apply(zm, x[:, :1], device, tile, progress).expand(-1, 3, -1, -1).contiguous()

    def fn(t: torch.Tensor) -> torch.Tensor:
        b, c, h, w = t.shape
        inp = t.reshape(b * c, 1, h, w) if grey else t
        out = model(inp.to(device, dtype)).float().cpu()
        return out.reshape(b, c, *out.shape[-2:]) if grey else out

    return run_tiled(fn, x, tile, OVERLAP_IN, scale=zm.info["scale"], progress=progress).clamp(0, 1)


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    from .restore import _compose, _resize_output, parse_tasks  # restore imports this module lazily

    t0 = time.perf_counter()
    name = params["model"]
    zm = ctx.models.zoo(name)
    requested = parse_tasks(params["task"])
    tasks = check_tasks(name, zm, requested, params["scale"] if "upscale" in requested else zm.info["scale"])
    scale = zm.info["scale"] if "upscale" in tasks else 1
    image, mask = inputs["image"], inputs.get("mask")
    rgb, alpha = images.split_alpha(images.to_float(image))
    m = images.mask_to_float(mask) if mask is not None else None
    box = images.work_area(m, stride=1) if m is not None else images.Box(0, 0, *image.shape[:2])
    meta: dict[str, Any] = {"model": name, "requested": params["task"], "tasks": tasks, "scale": scale,
                            "architecture": zm.info["architecture"]}
    if box is None:
        ctx.progress(1, 1, "composite")
        out = _resize_output(image, scale) if scale > 1 else image.copy()
        meta.update(tasks=[], empty_mask=True, timings={"total": 0.0})
        return {"image": out}, meta
    tile = tile_side(ctx.device, scale, params["tile"])
    stage = tasks[0]
    n = tile_count(box.h, box.w, tile, OVERLAP_IN)
    stages = Stages(ctx, {stage: n, "composite": 1})
    crop = np.clip(rgb[box.slices], 0.0, 1.0)
    x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float()
    y = apply(zm, x, ctx.device, tile, progress=lambda done, total: stages.report(stage, done))
    stages.done(stage)
    result = y[0].permute(1, 2, 0).numpy()
    out = _compose(image, rgb, alpha, result, box, m, scale, params["feather"])
    stages.report("composite", 1)
    stages.done("composite")
    meta["timings"] = {**stages.timings(), "total": round(time.perf_counter() - t0, 3)}
    if m is not None:
        meta["work_area"] = [box.y0, box.x0, box.y1, box.x1]
    return {"image": out}, meta
