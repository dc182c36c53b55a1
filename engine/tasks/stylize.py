"""`stylize`: re-render the image (or the selection) in the manner of a painting or a style model.

With a reference painting, the picture is repainted with the painting's own patches
(stylize_patch: guided exemplar synthesis, coarse to fine): the result carries the
painting's real strokes, lines and flat areas, laid along the picture's edges. Knobs:
`strength` (how much of the painting's texture replaces the picture's), `structure`
(how much of the picture's edges and layout the strokes follow), `stroke_scale` (size of
the copied strokes) and `palette` (how fully colours move to the painting's).

A style model made by `sfumato train --from builtin` on paintings carries an exemplar bank
(diffusion/style_bank.py: tiles of the painter's strokes and palette); alone, it is the
reference of the same exemplar path. A style model without a bank, or with a reference
image, takes the diffusion path: the picture is noised to a level set by `strength` and
denoised with the style model as prior (SDEdit), its low frequencies held to the
original's (`structure`), and, given a reference too, a palette match first and a pull of the estimates' random-feature
statistics towards the reference (`guidance`).

An optional mask limits the change to the selection; the rest is bit for bit the input.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from .. import images
from ..devices import work_side
from ..diffusion.denoiser import model_fn
from ..diffusion.sampling import SAMPLERS
from ..diffusion.schedule import DenoiseFn
from ..diffusion import style_bank
from ..diffusion.style import StyleGuide, style_steered
from ..errors import EngineError, TOO_LARGE
from .base import InputSpec, JobContext, Operation, ParamSpec
from .specs import DENOISERS, Require
from . import stylize_patch
from .jobtools import Stages, make_generator, randn, resolve_seed, sample_with_progress

GUIDE_SIGMA_MIN = 0.02  # below this the prior alone finishes the details
REMATCH = 0.5  # how far the exemplar synthesis's colours move back onto the painting's (stylize_patch.paint)


# ---------------------------------------------------------------- colour


def _sqrtm(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric square root and its inverse of a 3x3 covariance (regularised)."""
    lam, u = torch.linalg.eigh(c + 1e-5 * torch.eye(3, dtype=c.dtype))
    lam = lam.clamp_min(1e-6)
    return (u * lam.sqrt()) @ u.T, (u * lam.rsqrt()) @ u.T


def match_colours(x: torch.Tensor, ref: torch.Tensor, amount: float = 1.0) -> torch.Tensor:
    """Move the colours of x (B, 3, H, W) onto the distribution of ref (1, 3, h, w).

    The map is the optimal-transport (Monge-Kantorovich) linear map between the two colour
    Gaussians: it matches mean and covariance while moving every colour as little as
    possible, so the image's own light and shade survive. `amount` blends with the input.
    """
    if amount <= 0:
        return x
    b = x.shape[0]
    px = x.permute(0, 2, 3, 1).reshape(b, -1, 3).double()
    pr = ref.permute(0, 2, 3, 1).reshape(-1, 3).double()
    mu_r, cov_r = pr.mean(0), torch.cov(pr.T)
    out = []
    for i in range(b):
        p = px[i]
        mu_x, cov_x = p.mean(0), torch.cov(p.T)
        half, inv_half = _sqrtm(cov_x)
        middle, _ = _sqrtm(half @ cov_r @ half)
        a = inv_half @ middle @ inv_half
        out.append((p - mu_x) @ a.T + mu_r)
    mapped = torch.stack(out).reshape(b, x.shape[2], x.shape[3], 3).permute(0, 3, 1, 2).to(x.dtype)
    return (x + amount * (mapped - x)).clamp(-1, 1)


# ---------------------------------------------------------------- layout


def layout_sigma(structure: float, side: int) -> float:
    """Width of the low-pass that counts as layout: from 1/16 of the side (structure 0) down to
    ~1 pixel (structure 1), geometric in between."""
    coarse, fine = max(side / 16, 2.0), 1.0
    return float(coarse * (fine / coarse) ** structure)


def structure_kept(fn: DenoiseFn, target: torch.Tensor, structure: float, side: int) -> DenoiseFn:
    """Wrap a denoise fn: its estimate keeps the target's low frequencies (weight rises with
    structure); structure 0 leaves the estimate free."""
    if structure <= 0:
        return fn
    sigma = layout_sigma(structure, side)
    weight = min(1.0, 0.5 + structure)
    low_target = images.gaussian_blur(target, sigma, "reflect")

    def wrapped(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        d = fn(x, s)
        return d + weight * (low_target - images.gaussian_blur(d, sigma, "reflect"))
    return wrapped


# ---------------------------------------------------------------- the operation


def _reference(style: np.ndarray, pixels: int, device: str) -> torch.Tensor:
    """The reference in [-1, 1], resampled to about as many pixels as the work area, so its
    strokes keep their size relative to the picture."""
    rgb = images.to_float(style)[..., :3]
    h, w = rgb.shape[:2]
    s = min(1.5, math.sqrt(pixels / (h * w)))
    t = images.to_model(rgb, "cpu")
    size = (max(16, round(h * s)), max(16, round(w * s)))
    return images.resize(t, size).clamp(-1, 1).to(device)


def _diffusion(rgb: np.ndarray, ref_img: np.ndarray | None, den: Any, params: dict[str, Any], seed: int,
               ctx: JobContext) -> tuple[np.ndarray, dict]:
    """The style-model path: SDEdit from the palette-matched picture with the style model as prior."""
    model = den.descriptor
    h, w = rgb.shape[:2]
    device = ctx.device
    side = params["resolution"] or work_side("stylize", device)
    wh, ww = images.work_size(h, w, side, model.stride)
    content = images.resize(images.to_model(rgb, device), (wh, ww)).clamp(-1, 1)
    steps = params["steps"]
    stages = Stages(ctx, {"palette": 1, "diffusion": steps, "composite": 1})
    ref = _reference(ref_img, wh * ww, device) if ref_img is not None else None
    target = match_colours(content, ref, params["palette"]) if ref is not None else content
    stages.report("palette", 1)
    stages.done("palette")
    gen = make_generator(seed)
    sigma_start = model.sigmas.at_strength(params["strength"])
    sigmas = model.sigmas.schedule(steps, sigma_start, device)
    fn = model_fn(den, device)
    if ref is not None and params["guidance"] > 0:
        fn = style_steered(fn, StyleGuide(ref, seed=0), params["guidance"], sigma_min=GUIDE_SIGMA_MIN)
    fn = structure_kept(fn, target, params["structure"], max(wh, ww))
    x = target + randn(tuple(target.shape), gen, device) * sigmas[0]
    x = sample_with_progress(params["sampler"], fn, x, sigmas, gen, stages, "diffusion",
                             lambda info: images.preview(images.from_model(info["denoised"][:1])[0]))
    stages.done("diffusion")
    out = images.from_model(images.resize(x.clamp(-1, 1), (h, w)).cpu())[0]
    return out, {"method": "diffusion", "steps": steps, "sampler": params["sampler"],
                 "sigma_start": round(sigma_start, 4), "work_size": [wh, ww], "stages": stages}


def _exemplar(rgb: np.ndarray, ref_img: np.ndarray, params: dict[str, Any], seed: int, ctx: JobContext
              ) -> tuple[np.ndarray, dict]:
    """The reference path: the picture repainted with the painting's own patches (stylize_patch)."""
    h, w = rgb.shape[:2]
    side = params["resolution"] or work_side("stylize_patch", ctx.device)
    s = min(1.0, side / max(h, w))
    wh, ww = max(16, round(h * s)), max(16, round(w * s))
    stages = Stages(ctx, {"palette": 1, "synthesis": stylize_patch.PROGRESS_STEPS, "composite": 1})
    content = images.resize(images.to_model(rgb), (wh, ww), "bilinear").clamp(-1, 1)
    ref = images.to_model(images.to_float(ref_img)[..., :3])
    matched = images.from_model(match_colours(content, ref))[0]
    stages.report("palette", 1)
    stages.done("palette")
    out = stylize_patch.paint(images.from_model(content)[0], images.from_model(ref)[0], matched,
                              params["strength"], params["structure"], params["stroke_scale"], params["palette"],
                              seed, lambda i, n: stages.report("synthesis", i),
                              lambda a: images.from_model(match_colours(images.to_model(a), ref, REMATCH))[0])
    stages.done("synthesis")
    if (wh, ww) != (h, w):
        out = images.from_model(images.resize(images.to_model(out), (h, w)).clamp(-1, 1))[0]
    return out, {"method": "exemplar", "work_size": [wh, ww], "stages": stages}


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    image, mask, style = inputs["image"], inputs.get("mask"), inputs.get("style")
    seed = resolve_seed(params["seed"])
    if params["style_model"]:
        try:
            den = ctx.models.get(params["style_model"])
        except EngineError as exc:
            raise EngineError(exc.code, exc.message, "params.style_model") from exc
    else:
        den = ctx.models.get(params["model"])
    m = images.mask_to_float(mask) if mask is not None else None
    h_full, w_full = image.shape[:2]
    box = images.work_area(m, stride=den.descriptor.stride) if m is not None else images.Box(0, 0, h_full, w_full)
    meta: dict[str, Any] = {"seed": seed, "model": params["style_model"] or params["model"],
                            "strength": params["strength"], "structure": params["structure"]}
    if box is None:
        ctx.progress(1, 1, "composite")
        meta.update(empty_mask=True, timings={"total": 0.0})
        return {"image": image.copy()}, meta

    rgb, _ = images.split_alpha(images.to_float(image[box.slices]))
    bank = None
    if style is None:  # a style model alone: its exemplar bank, if training stored one
        bank = style_bank.load(ctx.models.folder(params["style_model"], "params.style_model"))
    if style is not None and not params["style_model"]:
        out_rgb, info = _exemplar(rgb, style, params, seed, ctx)
    elif bank is not None:
        out_rgb, info = _exemplar(rgb, bank, params, seed, ctx)
        info["exemplar_bank"] = True
    else:
        out_rgb, info = _diffusion(rgb, style, den, params, seed, ctx)
    stages = info.pop("stages")
    gen_full = images.to_float(image)[..., :3].copy()
    gen_full[box.slices] = out_rgb
    if m is None:
        out = image.copy()
        out[..., :3] = images.from_float(gen_full, image.dtype)
    else:
        out = images.composite(image, gen_full, m, params["feather"], match_colors=False)
    stages.report("composite", 1)
    stages.done("composite")
    meta.update(info, reference=style is not None,
                timings={**stages.timings(), "total": round(time.perf_counter() - t0, 3)})
    if m is not None:
        meta["work_area"] = [box.y0, box.x0, box.y1, box.x1]
    return {"image": out}, meta


OPERATION = Operation(
    name="stylize",
    doc="Re-render the image or the selection in the style of a reference image (palette, brushwork, texture) "
        "or of a style model trained with `sfumato train --from builtin`.",
    inputs=(
        InputSpec("image", doc="the layer (or a crop with context), RGB or RGBA; alpha is kept"),
        InputSpec("style", required=False, min_side=16, doc="reference image, e.g. a painting"),
        InputSpec("mask", required=False, channels=(1,), same_size_as="image", dtypes=("u8",),
                  doc="optional selection, 255 = stylize here"),
    ),
    params=(
        ParamSpec("style_model", "model", None, "style model folder under models/ (made by `sfumato train --from "
                  "builtin`): without a reference image, its exemplar bank of the painter's strokes is the "
                  "reference; with one, it is the diffusion prior; null = the base model", nullable=True, model_kinds=DENOISERS),
        ParamSpec("strength", "float", 1.0, "how much of the painting's texture replaces the picture's (0 = the "
                  "picture in the painting's colours, 1 = only the painting's strokes); with a style model alone: "
                  "the noise level the re-rendering starts from", min=0.0, max=1.0),
        ParamSpec("structure", "float", 0.5, "how much of the picture's edges and layout the strokes follow (0 = "
                  "the painting's strokes flow freely, 1 = every edge kept)", min=0.0, max=1.0),
        ParamSpec("stroke_scale", "float", 1.0, "size of the copied strokes relative to the picture (the painting "
                  "is scaled to this many times the picture's area, squared root)", min=0.25, max=4.0),
        ParamSpec("palette", "float", 1.0, "how fully the colours move to the painting's (0 = the picture's own "
                  "colours with the painting's strokes)", min=0.0, max=1.0),
        ParamSpec("guidance", "float", 4.0, "style model path only: how hard to pull texture towards the "
                  "reference (0 = palette only)", min=0.0, max=10.0),
        ParamSpec("steps", "int", 16, "style model path only: sampler steps (cost grows linearly)", min=1, max=200,
                  limit_code=TOO_LARGE,
                  cap="max_steps"),
        ParamSpec("seed", "int", None, "random seed; null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
        ParamSpec("sampler", "enum", "euler", "diffusion sampler", choices=tuple(SAMPLERS)),
        ParamSpec("model", "model", "builtin", "installed base model name (`sfumato models` lists them)",
                  model_kinds=DENOISERS),
        ParamSpec("resolution", "int", None, "longest side the synthesis (or the style model's sampler) "
                  "works at; null = default (synthesis 512; sampler CPU 384, GPU 1024)", min=64, max=4096,
                  nullable=True, limit_code=TOO_LARGE),
        ParamSpec("feather", "float", None, "mask edge feather in pixels; null = auto, 0 = hard edge",
                  min=0.0, max=64.0, nullable=True),
    ),
    rules=(
        Require(("inputs.style", "params.style_model"), "stylize needs a style: a reference image (inputs.style) "
                "or a style model (params.style_model, made by `sfumato train --from builtin`)"),
    ),
    run=run,
)
