"""`generate`: new images from the model, optionally seamless, optionally in the manner of a
reference texture.

The network is fully convolutional, so any size is sampled in one go. `tileable` swaps in
a twin of the model with circular padding (sharing the weights): every convolution then
sees the image as a torus and the result tiles without seams. A `reference` turns this
into texture synthesis by the exemplar core (engine.synthesis.texture: texture optimisation,
which copies and rearranges the reference's own patches, so stripes, bricks and lines keep
their shape; wrap-around when tileable). `variation` > 0 then lets the model redraw the
texture from that noise level, with every denoised estimate pulled towards the reference's
multi-scale feature statistics (`StyleGuide`, sliced Wasserstein). Statistics alone, from
spot noise, lost the structure (stripes became blotches), so they no longer start the texture.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import images
from ..diffusion.denoiser import circular_twin, model_fn
from ..diffusion.sampling import SAMPLERS
from ..diffusion.style import StyleGuide, style_steered
from ..errors import TOO_LARGE
from ..synthesis.texture import synthesize
from .base import InputSpec, JobContext, Operation, ParamSpec
from .specs import DENOISERS, Pixels, Size
from .jobtools import Stages, make_generator, randn, resolve_seed, sample_with_progress, variant_outputs

MAX_SIDE = 4096
MAX_PIXELS = 2048 * 2048  # width * height * variants, sampled in one batch
REFERENCE_SIDE = 512  # references are downscaled to this longest side for the statistics
REFERENCE_SIGMA = 1.5  # the most `variation`: the model redraws the synthesised texture from this noise level
GUIDE_SIGMA_MIN = 0.05  # below this the model alone finishes the details


def periodic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a periodic image to another size, keeping it periodic (bicubic with wrap-around)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    pad = 3
    xp = F.pad(x, (pad, pad, pad, pad), mode="circular")
    H, W = size
    ys = (torch.arange(H, dtype=torch.float32) + 0.5) * h / H - 0.5 + pad
    xs = (torch.arange(W, dtype=torch.float32) + 0.5) * w / W - 0.5 + pad
    gy = ys / (h + 2 * pad - 1) * 2 - 1
    gx = xs / (w + 2 * pad - 1) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None].expand(x.shape[0], -1, -1, -1)
    return F.grid_sample(xp, grid.to(x.device, x.dtype), mode="bicubic", padding_mode="border", align_corners=True)


def _reference(inputs: dict[str, np.ndarray]) -> np.ndarray | None:
    ref = inputs.get("reference")
    if ref is None:
        return None
    rgb = images.to_float(ref)[..., :3]
    h, w = rgb.shape[:2]
    s = min(1.0, REFERENCE_SIDE / max(h, w))
    if s < 1.0:
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        t = images.resize(t, (max(8, round(h * s)), max(8, round(w * s))))
        rgb = t[0].permute(1, 2, 0).clamp(0, 1).numpy()
    return rgb


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    t0 = time.perf_counter()
    width, height, n_var = params["width"], params["height"], params["variants"]
    seed = resolve_seed(params["seed"])
    den = ctx.models.get(params["model"])
    tileable = params["tileable"]
    if tileable:
        den = circular_twin(den)
    stride, schedule = den.descriptor.stride, den.descriptor.sigmas.schedule
    # Circular padding only tiles exactly at multiples of the stride: sample there, resample periodically.
    gh, gw = ((-(-height // stride) * stride, -(-width // stride) * stride) if tileable else (height, width))
    device = ctx.device
    gen = make_generator(seed)
    ref = _reference(inputs)
    steps = params["steps"]

    shape = (n_var, 3, gh, gw)
    fn = model_fn(den, device)
    variation = params["variation"]
    diffuse = ref is None or variation > 0
    stages = Stages(ctx, {"synthesis": n_var if ref is not None else 0, "diffusion": steps if diffuse else 0,
                          "composite": 1})
    if ref is not None:
        texs = []
        for v in range(n_var):
            texs.append(torch.from_numpy(synthesize(ref, gh, gw, wrap=tileable, seed=seed + v, device=device)))
            stages.report("synthesis", v + 1)
        stages.done("synthesis")
        x = torch.stack(texs).permute(0, 3, 1, 2).to(device) * 2 - 1
        if diffuse:
            sigmas = schedule(steps, variation, device)
            x = x + randn(shape, gen, device) * sigmas[0]
            if params["guidance"] > 0:
                guide = StyleGuide(images.to_model(ref, device))
                fn = style_steered(fn, guide, params["guidance"], sigma_min=GUIDE_SIGMA_MIN, split=False)
    else:
        sigmas = schedule(steps, device=device)
        x = randn(shape, gen, device) * sigmas[0]

    if diffuse:
        x = sample_with_progress(params["sampler"], fn, x, sigmas, gen, stages, "diffusion",
                                 lambda info: images.preview(images.from_model(info["denoised"][:1])[0]))
        stages.done("diffusion")
    if (gh, gw) != (height, width):
        x = periodic_resize(x, (height, width))
    dtype = inputs["reference"].dtype if "reference" in inputs and inputs["reference"] is not None else np.uint8
    outs = [images.from_float(img, dtype) for img in images.from_model(x)]
    stages.report("composite", 1)
    stages.done("composite")
    meta = {"seed": seed, "model": params["model"], "steps": steps, "sampler": params["sampler"],
            "tileable": tileable, "variants": n_var, "size": [height, width], "reference": ref is not None,
            "variation": variation if ref is not None else None,
            "timings": {**stages.timings(), "total": round(time.perf_counter() - t0, 3)}}
    return variant_outputs(outs), meta


OPERATION = Operation(
    name="generate",
    doc="New images from the model; tileable=true gives seamless patterns; a reference image is used as an "
        "example texture (grown from its own patches, keeping its structure; variation lets the model redraw it).",
    inputs=(
        InputSpec("reference", required=False, doc="optional example texture; the output takes its depth"),
    ),
    params=(
        ParamSpec("width", "int", 256, "output width in pixels", min=8, max=MAX_SIDE, limit_code=TOO_LARGE,
                  cap="max_side"),
        ParamSpec("height", "int", 256, "output height in pixels", min=8, max=MAX_SIDE, limit_code=TOO_LARGE,
                  cap="max_side"),
        ParamSpec("tileable", "bool", False, "seamless: the output tiles edge to edge (circular padding)"),
        ParamSpec("seed", "int", None, "random seed; null = random (the one used is returned in meta)",
                  min=0, max=2**31 - 1, nullable=True),
        ParamSpec("steps", "int", 24, "sampler steps (cost grows linearly)", min=1, max=200, limit_code=TOO_LARGE,
                  cap="max_steps"),
        ParamSpec("variants", "int", 1, "number of different images, from one batched run", min=1,
                  limit_code=TOO_LARGE, cap="max_variants"),
        ParamSpec("sampler", "enum", "dpmpp_2m", "diffusion sampler", choices=tuple(SAMPLERS)),
        ParamSpec("variation", "float", 0.0, "with a reference: the noise level the model redraws the "
                  "synthesised texture from (0 = the texture as synthesised; 0.3 varies detail, 1.5 redraws it)",
                  min=0.0, max=REFERENCE_SIGMA),
        ParamSpec("guidance", "float", 1.0, "how strongly the redrawn texture (variation > 0) follows the "
                  "reference's texture statistics", min=0.0, max=10.0),
        ParamSpec("model", "model", "builtin", "installed model name (`sfumato models` lists them)",
                  model_kinds=DENOISERS),
    ),
    rules=(
        Size("width", "height"),
        Pixels(("params.width", "params.height", "params.variants"), "params.width", max=MAX_PIXELS,
               doc="all variants are sampled in one batch; generate fewer or smaller images"),
    ),
    run=run,
)
