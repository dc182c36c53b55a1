"""Helpers shared by the diffusion operations: seeds, noise, staged progress, sampling runs.

Noise is always drawn on the CPU from a seeded generator and then moved to the device, so
a seed gives the same image on every machine that runs the same model.
"""
from __future__ import annotations

import secrets
import time
from typing import Callable

import numpy as np
import torch

from .. import images
from ..diffusion.denoiser import Denoiser, model_fn
from ..diffusion.sampling import SAMPLERS
from ..diffusion.schedule import DenoiseFn
from .base import JobContext


def resolve_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one (reported back in meta so a result can be redone)."""
    return int(seed) if seed is not None else secrets.randbelow(2**31)


def make_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Seeded standard normal noise, drawn on the CPU (device independent), then moved."""
    return torch.randn(shape, generator=generator).to(device)


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
        """Close a stage: record its wall time since the previous stage closed (for `timings`).
        Its steps were reported by `report` as they ran; this sends nothing."""
        now = time.perf_counter()
        self.times[stage] = round(now - self._t0, 3)
        self._t0 = now

    def timings(self) -> dict[str, float]:
        """Each closed stage's wall time in seconds, and their total (the result's meta)."""
        return {**self.times, "total": round(sum(self.times.values()), 3)}


def variant_outputs(images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """'image', 'image_1', 'image_2', ... as the protocol names variants."""
    return {("image" if i == 0 else f"image_{i}"): np.ascontiguousarray(img) for i, img in enumerate(images)}


def sample_with_progress(sampler: str, fn: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor,
                         generator: torch.Generator, stages: Stages, stage: str,
                         frame: Callable[[dict], np.ndarray], **options) -> torch.Tensor:
    """Run a named sampler, reporting each step of `stage` with `frame(info)` as its preview."""
    def callback(info: dict) -> None:
        stages.report(stage, info["step"], lambda: frame(info))

    return SAMPLERS[sampler](fn, x, sigmas, callback, generator, **options)


class Sampling:
    """The sampler run on one work area with known pixels (inpaint, restore's repair): the
    known pixels and mask condition the model and are re-imposed on every denoised estimate
    (data consistency); progress and previews go to the stage."""

    def __init__(self, den: Denoiser, device: str, known: torch.Tensor, hard: torch.Tensor,
                 generator: torch.Generator, sampler: str, stages: Stages, stage: str):
        self.known, self.hard = known, hard
        self.base = model_fn(den, device, known, hard)
        self.generator, self.sampler = generator, sampler
        self.stages, self.stage = stages, stage

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d = self.base(x, sigma)
        return self.known + self.hard * (d - self.known)  # known pixels are data: project onto them

    def run(self, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        known, hard = self.known, self.hard

        def frame(info: dict) -> np.ndarray:
            est = known[:1] + hard[:1] * (info["denoised"][:1] - known[:1])
            return images.preview(images.from_model(est)[0])

        return sample_with_progress(self.sampler, self.denoise, x, sigmas, self.generator, self.stages, self.stage,
                                    frame)
