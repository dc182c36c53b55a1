"""`inpaint --model NAME` with a zoo inpainting checkpoint (spandrel's MaskedImageModelDescriptor:
LaMa; MAT when spandrel_extra_arches is installed): the network fills the hole of the work area.

Everything around the network is the built-in path's (inpaint.run): the work area and its
context, the mask rules (removal grows the mask, transparent pixels count as hole), the
feathered, colour-matched composite that leaves every pixel outside the feathered mask bit
for bit as it was, alpha and 16-bit/float depth. Only the fill of the hole comes from here.

The size the network sees follows spandrel's facts about the architecture (size_requirements):
- a size-flexible network (LaMa: fully convolutional, Fourier convolutions, any side that is a
  multiple of 8) takes the work area at full resolution up to WORK_SIDE["inpaint_zoo"]
  (1024 px on a CPU, 2048 on a GPU); a larger area is downscaled to fit and only the fill is
  enlarged back (bicubic), the known pixels staying the input's.
- a fixed-size network (a square requirement: MAT is built for 512 x 512 and trained there)
  gets a work area grown to that side around the hole where the image allows (real context
  rather than padding), downscaled when it is larger, likewise.
Padding up to the requirement is spandrel's own (reflecting image and mask) and is cut off again.
Precision: restore_zoo.network (half or bfloat16 on a GPU where the architecture supports it).

What the diffusion parameters mean here: LaMa gives one result for one input, so variants > 1
is bad_param and the seed is unused (meta: deterministic). MAT draws a style code: the seed sets
it and variants are the seeds seed, seed + 1, ... strength < 1 (refine what is there) is not
something these networks do: bad_param. steps and sampler do not apply (meta lists them as ignored).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import images
from ..devices import work_side
from ..errors import BAD_PARAM, EngineError
from ..zoo.checkpoint import ZooModel, what_it_does
from .base import JobContext
from .jobtools import Stages, make_generator, randn
from .restore_zoo import network

IGNORED = ["steps", "sampler"]  # inpaint parameters a zoo network has no use for
STAGE = "network"


def _seeded(zm: ZooModel) -> bool:
    """Whether the network draws a latent the seed can set (MAT's style code z)."""
    return zm.model.architecture.id == "MAT"


def _set_latent(zm: ZooModel, seed: int, device: str) -> None:
    net = zm.model.model
    net.z = randn(tuple(net.z.shape), make_generator(seed), device).float()


def checked(name: str, ctx: JobContext, params: dict[str, Any]) -> ZooModel:
    """The zoo model for an inpaint; bad_param when it does not inpaint or when the request asks
    for what it cannot give (several variants of a deterministic network, strength < 1)."""
    zm = ctx.models.zoo(name)
    if zm.info["purpose"] != "inpaint":
        raise EngineError(BAD_PARAM, f"model {name!r} is a zoo model that does not inpaint ({what_it_does(zm.info)})",
                          "params.model")
    arch = zm.info["architecture"]
    if params["strength"] < 1.0:
        raise EngineError(BAD_PARAM, f"model {name!r} ({arch}) replaces the selection; it cannot refine what is "
                          f"there: send strength 1, or use a diffusion model", "params.strength")
    if params["variants"] > 1 and not _seeded(zm):
        raise EngineError(BAD_PARAM, f"model {name!r} ({arch}) is deterministic: it gives one result for one "
                          f"input; send variants 1", "params.variants")
    return zm


def stride(zm: ZooModel) -> int:
    """The work area's side multiple: the network's own (a fixed-size network's side, so the area
    grows to it around the hole where the image allows)."""
    return max(1, int(zm.model.size_requirements.multiple_of))


def network_side(zm: ZooModel, device: str) -> int:
    """Longest side the network sees: a fixed-size network's side, else the device's budget."""
    req = zm.model.size_requirements
    return max(req.minimum, req.multiple_of) if req.square else work_side("inpaint_zoo", device)


def fill(zm: ZooModel, rgb: np.ndarray, regen: np.ndarray, seed: int, n_var: int, ctx: JobContext,
         meta: dict) -> tuple[list[np.ndarray], Stages]:
    """One (h, w, 3) float fill per variant at the work area's resolution: the network's pixels
    in the hole (`regen`), the input's elsewhere; and the stages the composite goes on with."""
    h, w = regen.shape
    side = network_side(zm, ctx.device)
    s = min(1.0, side / max(h, w))
    size = (h, w) if s >= 1.0 else (max(1, round(h * s)), max(1, round(w * s)))
    x = torch.from_numpy(np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)).permute(2, 0, 1)[None]
    hole = torch.from_numpy(regen.astype(np.float32))[None, None]
    if size != (h, w):
        x = images.resize(x, size).clamp(0, 1)
        hole = (images.resize(hole, size, "area") > 1e-3).float()  # any overlap with the hole stays hole
    seeded = _seeded(zm)
    meta.update(architecture=zm.info["architecture"], network_size=list(size), deterministic=not seeded,
                ignored=IGNORED if seeded else IGNORED + ["seed"])
    stages = Stages(ctx, {STAGE: n_var, "composite": n_var})
    stages.report(STAGE, 0)  # a cancel that came while the job was queued stops it here
    model, dtype = network(zm, ctx.device)
    fills = []
    for v in range(n_var):
        if seeded:
            _set_latent(zm, seed + v, ctx.device)
        with torch.inference_mode():
            y = model(x.to(ctx.device, dtype), hole.to(ctx.device, dtype)).float().cpu()
        if size != (h, w):
            y = images.resize(y, (h, w)).clamp(0, 1)
        fills.append(np.where(regen[..., None], y[0].permute(1, 2, 0).numpy(), rgb))
        stages.report(STAGE, v + 1)
    stages.done(STAGE)
    return fills, stages
