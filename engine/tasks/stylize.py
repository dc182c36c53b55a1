"""`stylize`: re-render the image (or the selection) in the manner of a painting or a style model.

Three forces, each with its own knob:

- palette: the content's colours are first moved onto the reference's colour distribution
  (the linear Monge-Kantorovich map between the two colour Gaussians: mean and covariance
  matched, hue relations kept), so the result is in the painting's palette from the start;
- brushwork (`strength`): SDEdit. The palette-matched image is noised to a level set by
  `strength` and denoised again, while every denoised estimate takes a normalised gradient
  step on the sliced-Wasserstein distance between its multi-scale random-feature statistics
  and the reference's (style.StyleGuide): texture, stroke and colour statistics move
  towards the painting. A style model (`sfumato train --from builtin`) can be the prior
  instead of, or as well as, a reference;
- layout (`structure`): after each step the estimate's low frequencies are replaced by
  those of the palette-matched original (a Gaussian low-pass whose width shrinks as
  `structure` grows), so shapes and composition stay recognisable while the high
  frequencies (the strokes) are free.

The sampler works at a capped resolution (per device); a larger area is stylized there and
enlarged. An optional mask limits the change to the selection; the rest is bit for bit the input.
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
from ..diffusion.style import StyleGuide, style_steered
from ..errors import EngineError, TOO_LARGE
from .base import InputSpec, JobContext, Operation, ParamSpec
from .specs import DENOISERS, Require
from .jobtools import Stages, make_generator, randn, resolve_seed, sample_with_progress

GUIDE_SIGMA_MIN = 0.02  # below this the prior alone finishes the details


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


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    image, mask, style = inputs["image"], inputs.get("mask"), inputs.get("style")
    seed = resolve_seed(params["seed"])
    device = ctx.device
    if params["style_model"]:
        try:
            den = ctx.models.get(params["style_model"])
        except EngineError as exc:
            raise EngineError(exc.code, exc.message, "params.style_model") from exc
    else:
        den = ctx.models.get(params["model"])
    model = den.descriptor
    m = images.mask_to_float(mask) if mask is not None else None
    h_full, w_full = image.shape[:2]
    box = images.work_area(m, stride=model.stride) if m is not None else images.Box(0, 0, h_full, w_full)
    meta: dict[str, Any] = {"seed": seed, "model": params["style_model"] or params["model"],
                            "strength": params["strength"], "structure": params["structure"]}
    if box is None:
        ctx.progress(1, 1, "composite")
        meta.update(empty_mask=True, timings={"total": 0.0})
        return {"image": image.copy()}, meta

    f = images.to_float(image[box.slices])
    rgb, _ = images.split_alpha(f)
    h, w = rgb.shape[:2]
    side = params["resolution"] or work_side("stylize", device)
    wh, ww = images.work_size(h, w, side, model.stride)
    content = images.resize(images.to_model(rgb, device), (wh, ww)).clamp(-1, 1)

    steps = params["steps"]
    stages = Stages(ctx, {"palette": 1, "diffusion": steps, "composite": 1})
    ref = _reference(style, wh * ww, device) if style is not None else None
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

    out_rgb = images.from_model(images.resize(x.clamp(-1, 1), (h, w)).cpu())[0]
    gen_full = images.to_float(image)[..., :3].copy()
    gen_full[box.slices] = out_rgb
    if m is None:
        out = image.copy()
        out[..., :3] = images.from_float(gen_full, image.dtype)
    else:
        out = images.composite(image, gen_full, m, params["feather"], match_colors=False)
    stages.report("composite", 1)
    stages.done("composite")
    meta.update(steps=steps, sampler=params["sampler"], sigma_start=round(sigma_start, 4), work_size=[wh, ww],
                reference=ref is not None, timings={**stages.timings(), "total": round(time.perf_counter() - t0, 3)})
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
                  "builtin`), used as the prior; null = the base model", nullable=True, model_kinds=DENOISERS),
        ParamSpec("strength", "float", 0.45, "how far to depart from the original: the noise level the "
                  "re-rendering starts from (0.3 subtle, 0.45 painterly, 0.6 loose)", min=0.05, max=1.0),
        ParamSpec("structure", "float", 0.5, "how much layout and edges to keep (0 = only the broad composition, "
                  "1 = fine edges)", min=0.0, max=1.0),
        ParamSpec("guidance", "float", 4.0, "how hard to pull texture and strokes towards the reference "
                  "(0 = palette only)", min=0.0, max=10.0),
        ParamSpec("palette", "float", 1.0, "how fully to adopt the reference's colours", min=0.0, max=1.0),
        ParamSpec("steps", "int", 16, "sampler steps (cost grows linearly)", min=1, max=200, limit_code=TOO_LARGE,
                  cap="max_steps"),
        ParamSpec("seed", "int", None, "random seed; null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
        ParamSpec("sampler", "enum", "euler", "diffusion sampler", choices=tuple(SAMPLERS)),
        ParamSpec("model", "model", "builtin", "installed base model name (`sfumato models` lists them)",
                  model_kinds=DENOISERS),
        ParamSpec("resolution", "int", None, "longest side the sampler works at; null = device default "
                  "(CPU 384, GPU 1024)", min=64, max=4096, nullable=True, limit_code=TOO_LARGE),
        ParamSpec("feather", "float", None, "mask edge feather in pixels; null = auto, 0 = hard edge",
                  min=0.0, max=64.0, nullable=True),
    ),
    rules=(
        Require(("inputs.style", "params.style_model"), "stylize needs a style: a reference image (inputs.style) "
                "or a style model (params.style_model, made by `sfumato train --from builtin`)"),
    ),
    run=run,
)
