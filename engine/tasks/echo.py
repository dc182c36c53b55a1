"""Test-only operation: returns its inputs unchanged.

It measures the transport (bench/transport.py) and exercises progress, cancellation and
error paths in tests without a model: `delay` seconds are spread over `steps` progress
calls, each of which is a cancellation point.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import BAD_PARAM, TOO_LARGE, EngineError
from .base import InputSpec, JobContext, Operation, ParamSpec


def run(inputs: dict[str, np.ndarray], params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, np.ndarray], dict]:
    steps, delay = params["steps"], params["delay"]
    for step in range(1, steps + 1):
        if delay:
            time.sleep(delay / steps)
        preview = None
        if params["preview"] and ctx.wants_preview(step, steps):
            image = inputs["image"]
            preview = np.ascontiguousarray(image[:: max(1, image.shape[0] // 32), :: max(1, image.shape[1] // 32)])
            if preview.dtype != np.uint8:
                preview = None
        ctx.progress(step, steps, "echo", preview)
    if params["fail"] == "internal":
        raise RuntimeError("echo was asked to fail (fail=internal)")
    if params["fail"] == "bad_param":
        raise EngineError(BAD_PARAM, "echo was asked to fail (fail=bad_param)", "params.fail")
    return dict(inputs), {"echoed": sorted(inputs)}


OPERATION = Operation(
    name="echo",
    doc="Test only: returns its inputs unchanged (transport benchmark, engine tests).",
    inputs=(
        InputSpec("image", channels=(1, 3, 4), doc="any array"),
        InputSpec("mask", required=False, channels=(1,), dtypes=("u8",), same_size_as="image",
                  doc="optional mask, same size as image"),
    ),
    params=(
        ParamSpec("steps", "int", 1, "progress steps", min=1, max=1000, limit_code=TOO_LARGE, cap="max_steps"),
        ParamSpec("delay", "float", 0.0, "seconds to spend, spread over the steps", min=0.0, max=60.0),
        ParamSpec("preview", "bool", False, "send a small preview every few steps (u8 images)"),
        ParamSpec("fail", "enum", "none", "make the job fail, to test error paths",
                  choices=("none", "internal", "bad_param")),
    ),
    run=run,
    test_only=True,
)
