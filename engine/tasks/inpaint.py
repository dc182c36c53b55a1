"""`inpaint`: fill, remove or refine the selected pixels so they match their surroundings.

Pipeline (each stage reports progress under its name):
  prefill    holes deeper than the thin-hole path takes are completed by exemplar synthesis
             at full resolution (inpaint_large, for both methods; no diffusion pass there);
  diffusion  otherwise the work area (selection + context, capped resolution) is sampled with the
             known pixels as conditioning channels and re-imposed on every denoised
             estimate (data consistency); strength < 1 starts from the noised original
             instead (SDEdit inside the mask);
  detail     when the work area was downscaled, a short low-noise pass at full resolution
             restores fine texture;
  composite  feathered, colour-matched blend; pixels outside the feathered mask are the
             input's, bit for bit.
A zoo inpainting model (`model` naming a LaMa or MAT checkpoint, engine/zoo) replaces prefill,
diffusion and detail: its network fills the hole of the same work area (inpaint_zoo).
Outpainting is the same operation: mask the transparent (or added) canvas.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import images
from ..diffusion.sampling import SAMPLERS
from ..diffusion.schedule import SigmaRange
from ..errors import TOO_LARGE
from .base import InputSpec, JobContext, Operation, ParamSpec
from .specs import DENOISERS, ZOO
from .jobtools import Sampling, Stages, make_generator, randn, resolve_seed, variant_outputs
from ..fills import THIN_DEPTH, hole_extent, share_within, tension_fill
from . import inpaint_large as large
from . import inpaint_zoo

THIN_SIGMA = 0.05  # noise level the denoiser is told when it refines a thin hole's fill (no noise is added)
HAIRLINE_SIGMA = 0.02  # the same for hairlines (3 in 4 hole pixels within HAIRLINE px of the border)
HAIRLINE = 2  # px: a hole is a hairline when 3 in 4 of its pixels lie this close to a known pixel
THIN_MAX_AREA = 4  # thin holes run at full resolution up to this many times the capped area
BLOB_RADIUS = 8  # px: holes at most this deep (hairlines, narrow strokes) always take the thin path
BLOB_SHAPE = 40  # compact holes (area < BLOB_SHAPE * radius^2) are objects, not strokes
PATCH_ALIGN = 8  # work-area alignment of the patch method, which needs no model (the others use the model's stride)
DETAIL_SIGMA = 0.25  # noise level of the full-resolution detail pass
DETAIL_STEPS = 3
DETAIL_MARGIN = 16  # pixels of context around the hole in the detail pass


def _hard_mask(m: np.ndarray, size: tuple[int, int], device: str) -> torch.Tensor:
    """Mask at the given size: any overlap with the selection counts as hole (thin lines survive)."""
    t = images.mask_to_model(m, device)
    return (images.resize(t, size, "area") > 1e-3).float()


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t_start = time.perf_counter()
    image, mask = inputs["image"], inputs["mask"]
    n_var, method, strength = params["variants"], params["method"], params["strength"]
    seed = resolve_seed(params["seed"])
    m = images.mask_to_float(mask)
    if params["remove"]:  # object removal: take the object's soft fringe too
        m = np.maximum(m, images.dilate(m > 0, large.removal_grow(m > 0)).astype(np.float32))
    meta: dict[str, Any] = {"seed": seed, "method": method, "variants": n_var, "strength": strength}
    zoo = method != "patch" and ctx.models.is_zoo(params["model"])  # its network fills instead of the sampler
    zm = inpaint_zoo.checked(params["model"], ctx, params) if zoo else None
    if method == "patch":
        stride = PATCH_ALIGN
    else:
        stride = inpaint_zoo.stride(zm) if zm else ctx.models.get(params["model"]).descriptor.stride
    box = images.work_area(m, large.work_context(m, params["context"]), stride=stride)
    if box is None:  # nothing selected: nothing to do, and nothing changes
        ctx.progress(1, 1, "composite")
        meta.update(empty_mask=True, timings={"total": 0.0})
        return variant_outputs([image.copy() for _ in range(n_var)]), meta

    f = images.to_float(image[box.slices])
    rgb, alpha = images.split_alpha(f)
    mc = m[box.slices]
    regen = mc > 0
    if alpha is not None:  # transparent pixels carry no information: never use them as context
        regen = regen | (alpha <= 0)
    device = ctx.device
    src = inputs.get("source")
    source = large.source_region(regen, None if src is None else images.mask_to_float(src)[box.slices], params["remove"])

    if method == "patch":
        stages = Stages(ctx, {"prefill": 10, "composite": 1})
        fills = large.synthesize(rgb, regen, source, seed, n_var, device,
                                 lambda i, n: stages.report("prefill", round(10 * i / n)))
        stages.done("prefill")
        meta.update(work_area=[box.y0, box.x0, box.y1, box.x1])
    elif zm is not None:
        fills, stages = inpaint_zoo.fill(zm, rgb, regen, seed, n_var, ctx, meta)
        meta.update(model=params["model"], work_area=[box.y0, box.x0, box.y1, box.x1])
    else:
        den = ctx.models.get(params["model"])
        fills, stages = _diffuse(den, device, rgb, regen, params, seed, n_var, ctx, meta, source)
        meta.update(model=params["model"], sampler=params["sampler"], steps=params["steps"],
                    work_area=[box.y0, box.x0, box.y1, box.x1])

    outs = []
    crop = image[box.slices]
    for v, fill in enumerate(fills):
        gen = fill
        if alpha is not None and strength >= 1.0 and (alpha[mc > 0] <= 0).any():
            # outpainting: canvas that was fully transparent becomes opaque; other alpha stays
            gen = np.concatenate([fill, np.where(alpha <= 0, 1.0, alpha)[..., None]], axis=2)
        out = image.copy()
        out[box.slices] = images.composite(crop, gen, mc, params["feather"])
        outs.append(out)
        stages.report("composite", 1)
    stages.done("composite")
    meta["timings"] = {**stages.timings(), "total": round(time.perf_counter() - t_start, 3)}
    return variant_outputs(outs), meta


@dataclass
class Plan:
    """How one diffusion inpaint runs; chosen from the hole's shape and the strength."""

    work: tuple[int, int]  # sampler resolution
    start: str  # "noise", "original" (SDEdit), "synthesis" (exemplar completion), or the pre-fill "tension"
    sigma_start: float
    steps: int
    detail: bool  # full-resolution pass after a downscaled one
    noise: bool = True  # False: the first variant refines the start as it is (one deterministic step)


def plan(h: int, w: int, radius: int, depth: float, strength: float, steps: int, cap: int, stride: int,
         sigmas: SigmaRange, known_any: bool = True, hairline: bool = False, spread: int = 0,
         blob: bool = False) -> Plan:
    """Choose resolution, starting point and noise level for one inpaint.

    - strength < 1: SDEdit from the noised original, at the capped resolution.
    - thin holes (scratches, brush strokes up to about 40 px wide, judged by `depth`, the
      distance to the border that 3 in 4 hole pixels stay within, so crossing strokes stay
      thin while a 64 px box does not): the tension-spline fill at
      full resolution, refined by one denoiser step; the first variant adds no noise (noise
      only costs PSNR in a hole this thin; further variants add a little, to differ); what
      fills a thin hole is decided by its border, and downscaling would blur the context it
      is read from (measured: about 1 dB less inside strokes 5-35 px wide).
      A hole that spreads wider than the work cap (`spread`, its bounding box's longer
      side) has its depth counted at the scale that fits it into the cap: crossing strokes
      over a whole photo are a pattern of strokes, not an object, and sampling them
      downscaled loses the context's detail (measured on training photos: the spline path
      scored 1.0 dB more than the sampler on 12 such masks). A compact hole keeps the
      sampler, which invents texture, whatever the context around it.
      The denoiser is told a noise level that grows with the fill's likely error: the spline
      is nearly right across a hairline (`hairline`: 1-3 px scratches), less so across a
      stroke (on training photos sigma 0.02 scored best on scratches, 0.05 on strokes).
    - a compact hole (`blob`: an object's shape, see `is_blob`) is never thin, however shallow
      most of it is: a 60 x 40 px ellipse has 3 in 4 pixels within 16 px of its border, but
      the spline across it is a smear; it is synthesised (inpaint_large).
    - deeper holes (objects, outpainting): "synthesis", exemplar completion at full
      resolution (inpaint_large); the sampler is not run over them.
    - nothing known at all: plain generation from noise.
    The noise levels are tuned on held-in training photos for PSNR inside the hole (see
    docs/performance.md): the shipped model loses PSNR when started from higher noise.
    """
    work = images.work_size(h, w, cap, stride)
    if strength < 1.0:
        return Plan(work, "original", sigmas.at_strength(strength), max(1, round(steps * strength)), work != (h, w))
    if not known_any:
        return Plan(work, "noise", sigmas.sigma_max, steps, work != (h, w))
    if depth * min(1.0, cap / max(spread, 1)) <= THIN_DEPTH and h * w <= THIN_MAX_AREA * cap * cap and not blob:
        return Plan((h, w), "tension", HAIRLINE_SIGMA if hairline else THIN_SIGMA, 1, False, noise=False)
    return Plan((h, w), "synthesis", 0.0, 0, False, noise=False)


def is_blob(hole: np.ndarray, radius: int) -> bool:
    """An object-shaped hole, not strokes: wider than BLOB_RADIUS and compact, with an area
    under BLOB_SHAPE times its radius squared (an ellipse: about 3 to 12; a stroke of length
    L and width W: 4 L / W, and strokes across a photo run far above 40)."""
    return radius > BLOB_RADIUS and float(hole.sum()) < BLOB_SHAPE * radius * radius


def _diffuse(den, device: str, rgb: np.ndarray, regen: np.ndarray, params: dict[str, Any], seed: int, n_var: int,
             ctx: JobContext, meta: dict, source: np.ndarray | None = None) -> tuple[list[np.ndarray], Stages]:
    """Sample the work area (or synthesise a deep hole); returns one (h, w, 3) float fill per
    variant at full resolution, and the stages, which the composite goes on to report."""
    h, w = regen.shape
    radius, depth = hole_extent(regen, 0.75)
    bbox = images.mask_bbox(regen)
    model = den.descriptor
    pl = plan(h, w, radius, depth, params["strength"], params["steps"], images.work_cap(device), model.stride,
              model.sigmas, known_any=not regen.all(),
              hairline=depth <= THIN_DEPTH and share_within(regen, HAIRLINE) >= 0.75,
              spread=max(bbox.h, bbox.w) if bbox else 0, blob=is_blob(regen, radius))
    if pl.start == "synthesis":
        return _large(rgb, regen, seed, n_var, ctx, meta, source)
    prefill = pl.start == "tension"
    stages = Stages(ctx, {"prefill": 1 if prefill else 0, "diffusion": pl.steps,
                          "detail": DETAIL_STEPS if pl.detail else 0, "composite": n_var})
    meta.update(work_size=list(pl.work), start=pl.start, sigma_start=round(pl.sigma_start, 4))
    gen = make_generator(seed)
    known_full = images.to_model(rgb, device)
    hard_w = _hard_mask(regen.astype(np.float32), pl.work, device)
    known_w = images.resize(known_full, pl.work) if pl.work != (h, w) else known_full
    hole_w = hard_w[0, 0].cpu().numpy() > 0

    start = known_w
    if prefill:
        start = images.to_model(tension_fill(images.from_model(known_w)[0], hole_w), device)
        stages.report("prefill", 1)
        stages.done("prefill")
    sigmas = model.sigmas.schedule(pl.steps, pl.sigma_start, device)
    shape = (n_var, 3) + tuple(pl.work)
    noise = randn(shape, gen, device) * sigmas[0]
    if not pl.noise:  # the first variant is the fill refined as it is; others are lightly noised
        noise[0] = 0
    x = noise if pl.start == "noise" else start.expand(n_var, -1, -1, -1) + noise
    sampling = Sampling(den, device, known_w.expand(n_var, -1, -1, -1), hard_w, gen, params["sampler"], stages,
                        "diffusion")
    x = sampling.run(x, sigmas)
    stages.done("diffusion")

    if pl.detail:
        x = _detail_pass(den, device, known_full, regen, x, gen, params["sampler"], stages)
        stages.done("detail")
    return list(images.from_model(x)), stages


def _large(rgb: np.ndarray, regen: np.ndarray, seed: int, n_var: int, ctx: JobContext, meta: dict,
           source: np.ndarray | None) -> tuple[list[np.ndarray], Stages]:
    stages = Stages(ctx, {"prefill": 10, "composite": n_var})
    meta.update(work_size=list(regen.shape), start="synthesis")
    fills = large.synthesize(rgb, regen, source, seed, n_var, ctx.device,
                             lambda i, n: stages.report("prefill", round(10 * i / n)))
    stages.done("prefill")
    return fills, stages


def _detail_pass(den, device: str, known_full: torch.Tensor, regen: np.ndarray, x_small: torch.Tensor,
                 gen: torch.Generator, sampler: str, stages: Stages) -> torch.Tensor:
    """Upscale the fill and re-sample it lightly at full resolution, around the hole only."""
    h, w = regen.shape
    n = x_small.shape[0]
    up = images.resize(x_small.clamp(-1, 1), (h, w), "bicubic")
    hard = images.mask_to_model(regen.astype(np.float32), device)
    known = known_full.expand(n, -1, -1, -1)
    base = known + hard * (up - known)
    box = images.mask_bbox(regen)
    margin = DETAIL_MARGIN
    y0, y1 = images.grow_to_multiple(max(0, box.y0 - margin), min(h, box.y1 + margin), h, den.descriptor.stride)
    x0, x1 = images.grow_to_multiple(max(0, box.x0 - margin), min(w, box.x1 + margin), w, den.descriptor.stride)
    sl = (slice(None), slice(None), slice(y0, y1), slice(x0, x1))
    sigmas = den.descriptor.sigmas.schedule(DETAIL_STEPS, DETAIL_SIGMA, device)
    xs = base[sl] + randn(tuple(base[sl].shape), gen, device) * sigmas[0]
    sampling = Sampling(den, device, known[sl], hard[sl], gen, sampler, stages, "detail")
    out = base.clone()
    out[sl] = sampling.run(xs, sigmas)
    return out


OPERATION = Operation(
    name="inpaint",
    doc="Fill, remove or refine the masked pixels (255 = regenerate) so they match their surroundings; "
        "a mask over transparent or added canvas outpaints.",
    inputs=(
        InputSpec("image", doc="the layer (or a crop of it with context), RGB or RGBA"),
        InputSpec("mask", channels=(1,), same_size_as="image", dtypes=("u8",), doc="selection, 255 = regenerate, soft edges allowed"),
        InputSpec("source", required=False, channels=(1,), same_size_as="image", dtypes=("u8",),
                  doc="optional: where large fills may copy texture from (255 = may copy); other pixels are never copied"),
    ),
    params=(
        ParamSpec("strength", "float", 1.0, "1 replaces the selection; below 1 refines what is there "
                  "(how much noise is added before denoising)", min=0.05, max=1.0),
        ParamSpec("steps", "int", 20, "sampler steps at work resolution (cost grows linearly); thin holes "
                  "(scratches, strokes) take one refinement step whatever this says", min=1, max=200,
                  limit_code=TOO_LARGE, cap="max_steps"),
        ParamSpec("seed", "int", None, "random seed; null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
        ParamSpec("variants", "int", 1, "number of different fills, from one batched run (in thin holes they "
                  "differ only slightly)", min=1,
                  limit_code=TOO_LARGE, cap="max_variants"),
        ParamSpec("method", "enum", "diffusion", "diffusion (model) or patch (exemplar synthesis: "
                  "multi-scale PatchMatch completion, no model); holes deeper than thin strokes are "
                  "synthesised either way", choices=("diffusion", "patch")),
        ParamSpec("remove", "bool", False, "object removal: grow the mask by a few pixels (the object's fringe "
                  "and shadow edge go too) and never copy texture from the object or a ring around it"),
        ParamSpec("sampler", "enum", "dpmpp_2m", "diffusion sampler", choices=tuple(SAMPLERS)),
        ParamSpec("model", "model", "builtin", "installed model name (`sfumato models` lists them); a zoo "
                  "inpainting model (LaMa, MAT: welcome.models[].serves lists inpaint) fills the hole with its "
                  "network in one pass (strength 1; steps and sampler do not apply)",
                  model_kinds=DENOISERS + (ZOO,)),
        ParamSpec("context", "int", None, "pixels of context around the selection; null = auto "
                  "(max(longest side / 16, mean selection side / 2))", min=0, max=4096, nullable=True),
        ParamSpec("feather", "float", None, "edge feather in pixels, outwards from the selection; null = auto "
                  "(grows with the selection), 0 = hard edge", min=0.0, max=64.0, nullable=True),
    ),
    run=run,
)
