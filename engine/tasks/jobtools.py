"""Helpers shared by the diffusion operations: seeds, noise, schedules, staged progress.

Noise is always drawn on the CPU from a seeded generator and then moved to the device, so
a seed gives the same image on every machine that runs the same model.
"""
from __future__ import annotations

import copy
import secrets
import threading
import time
import weakref
from contextlib import nullcontext
from typing import Callable

import numpy as np
import torch

from ..diffusion.denoiser import Denoiser
from ..diffusion.sampling import SAMPLERS, karras_sigmas
from .base import JobContext

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


def resolve_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one (reported back in meta so a result can be redone)."""
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def make_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Seeded standard normal noise, drawn on the CPU (device independent), then moved."""
    return torch.randn(shape, generator=generator).to(device)


def noise_fn(generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """A `noise(like)` for samplers/guidance, drawing from the job's seeded generator."""
    return lambda like: randn(tuple(like.shape), generator, like.device).to(like.dtype)


def strength_sigma(strength: float) -> float:
    """Noise level where an SDEdit of the given strength starts: the point `strength` of the
    way along the Karras schedule from sigma_min to sigma_max (1 -> 80, 0.5 -> ~2.5, 0.3 -> ~0.3)."""
    lo, hi = SIGMA_MIN ** (1 / RHO), SIGMA_MAX ** (1 / RHO)
    return float((lo + strength * (hi - lo)) ** RHO)


def schedule(steps: int, sigma_start: float = SIGMA_MAX, device: torch.device | str = "cpu") -> torch.Tensor:
    """Karras sigmas from sigma_start down to sigma_min, then 0."""
    return karras_sigmas(max(1, steps), SIGMA_MIN, max(sigma_start, SIGMA_MIN * 1.01), RHO, device)


def model_fn(den: Denoiser, cond: torch.Tensor, device: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """denoise(x, sigma) with the conditioning bound; bf16 autocast on CUDA, float32 out."""
    use_amp = str(device).startswith("cuda")

    def fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
        with torch.no_grad(), amp:
            return den(x, sigma, cond).float()
    return fn


_CIRCULAR: "weakref.WeakKeyDictionary[Denoiser, Denoiser]" = weakref.WeakKeyDictionary()
_CIRCULAR_LOCK = threading.Lock()


def circular_copy(den: Denoiser) -> Denoiser:
    """A twin of the denoiser with circular padding that shares its weights (cached).

    The shared model is never toggled, so another job using it meanwhile is unaffected.
    """
    with _CIRCULAR_LOCK:
        twin = _CIRCULAR.get(den)
        if twin is None:
            memo = {id(t): t for t in list(den.parameters()) + list(den.buffers())}
            twin = copy.deepcopy(den, memo)
            twin.net.set_padding_mode("circular")
            _CIRCULAR[den] = twin
        return twin


class Stages:
    """Progress over several named stages as one monotonic step counter."""

    def __init__(self, ctx: JobContext, plan: dict[str, int]):
        self.ctx = ctx
        self.plan = dict(plan)
        self.total = max(1, sum(plan.values()))
        self.offsets: dict[str, int] = {}
        acc = 0
        for name, n in plan.items():
            self.offsets[name] = acc
            acc += n
        self.times: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def report(self, stage: str, step: int, preview: Callable[[], np.ndarray] | None = None) -> None:
        """Report step `step` (1-based) of `stage`; `preview` is called only when a frame is due."""
        global_step = self.offsets.get(stage, 0) + min(step, self.plan.get(stage, step))
        due = self.ctx.wants_preview(global_step, self.total) or step == self.plan.get(stage)  # and each stage's end
        frame = preview() if (preview is not None and due) else None
        self.ctx.progress(global_step, self.total, stage, frame)

    def done(self, stage: str) -> None:
        """Close a stage: record its wall time and report its last step."""
        now = time.perf_counter()
        self.times[stage] = round(now - self._t0, 3)
        self._t0 = now

    def timings(self) -> dict[str, float]:
        return {**self.times, "total": round(sum(self.times.values()), 3)}


def variant_outputs(images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """'image', 'image_1', 'image_2', ... as the protocol names variants."""
    return {("image" if i == 0 else f"image_{i}"): np.ascontiguousarray(img) for i, img in enumerate(images)}


def sample_with_progress(sampler: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                         sigmas: torch.Tensor, generator: torch.Generator, stages: Stages, stage: str,
                         frame: Callable[[dict], np.ndarray], **options) -> torch.Tensor:
    """Run a named sampler, reporting each step of `stage` with `frame(info)` as its preview.
    DPM-Solver++(2M) is deterministic, so it takes neither the generator nor the churn options."""
    def callback(info: dict) -> None:
        stages.report(stage, info["step"], lambda: frame(info))

    kwargs: dict = {"callback": callback}
    if sampler != "dpmpp_2m":
        kwargs.update(generator=generator, **options)
    return SAMPLERS[sampler](fn, x, sigmas, **kwargs)
