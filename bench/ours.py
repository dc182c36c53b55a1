"""'Ours': the engine, reached through engine.client exactly as a plug-in reaches it.

The benchmark starts a real engine in this process (Client.in_process: the real protocol
over ZeroMQ, the real operations and model) so every figure includes what a user pays: validation,
transport, work-area logic, compositing. Images cross the wire as the protocol wants them:
uint8 for 8-bit inputs, float32 in [0, 1] for the unclipped noisy denoising inputs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import as_float

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = REPO / "models"


class OursUnavailable(RuntimeError):
    """The engine cannot serve an op (not installed yet, or no model): the message says why."""


def _to255(img: np.ndarray) -> np.ndarray:
    """An engine output (u8, u16 or f32 in [0, 1]) on the 0..255 float scale."""
    if img.dtype == np.float32:
        return np.asarray(img, dtype=np.float64) * 255.0
    return as_float(img)


class Ours:
    """An in-process engine and a client connected to it; use as a context manager."""

    def __init__(self, models_dir: str | Path | None = None, device: str = "cpu", timeout: float = 600.0):
        from engine.client import Client

        self.models_dir = Path(models_dir) if models_dir else DEFAULT_MODELS
        if not (self.models_dir / "builtin" / "model.json").is_file():
            raise OursUnavailable(f"no built-in model in {self.models_dir}/builtin (model.json + "
                                  "model.safetensors); pass --models DIR")
        self.device = device
        self.client = Client.in_process(models_dir=str(self.models_dir), device=device, timeout=timeout)
        self.welcome = self.client.hello()
        self.ops: dict[str, dict] = self.welcome.get("ops", {})
        self.last_seconds = 0.0
        self.last_meta: dict = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Ours":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- introspection ----------------------------------------------------------------------
    def has(self, op: str, param: str | None = None) -> bool:
        spec = self.ops.get(op)
        if spec is None:
            return False
        return param is None or param in spec.get("params", {})

    def require(self, op: str) -> None:
        if op not in self.ops:
            raise OursUnavailable(f"the engine has no '{op}' operation yet (ops: {', '.join(sorted(self.ops))})")

    def param_default(self, op: str, param: str) -> Any:
        return self.ops.get(op, {}).get("params", {}).get(param, {}).get("default")

    def model_info(self) -> dict:
        """The built-in model's listing entry plus its card highlights, for the report."""
        info: dict[str, Any] = {"models_dir": self.models_dir.name, "device": self.welcome.get("device", self.device),
                                "engine": self.welcome.get("engine")}
        for entry in self.client.models():
            if entry.get("name") == "builtin":
                info.update({k: v for k, v in entry.items() if v is not None})
        try:
            import json
            card = json.loads((self.models_dir / "builtin" / "model.json").read_text())
            info["training_steps"] = card.get("total_steps", card.get("steps"))  # all stages of a continued model
            info["parameters"] = card.get("parameters")
        except (OSError, ValueError):
            pass
        return info

    # ---- calls -------------------------------------------------------------------------------
    def run(self, op: str, inputs: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
        """One job; returns the 'image' output and records its wall time and meta."""
        self.require(op)
        params = {k: v for k, v in params.items() if v is not None or self.has(op, k)}
        if self.has(op, "seed") and params.get("seed") is None:
            params["seed"] = 0  # reproducible runs; a null seed would mean random
        t0 = time.perf_counter()
        res = self.client.run(op, inputs, params)
        self.last_seconds = time.perf_counter() - t0
        self.last_meta = res.meta
        return np.array(res.outputs["image"])  # copy: the received frame is read-only

    def denoise(self, noisy: np.ndarray, sigma: float, **params: Any) -> np.ndarray:
        """noisy: unclipped float on 0..255; sigma on 0..255. Returns float on 0..255."""
        x = (np.asarray(noisy, dtype=np.float64) / 255.0).astype(np.float32)
        out = self.run("restore", {"image": x}, {"task": "denoise", "sigma": float(sigma), **params})
        return _to255(out)

    def upscale(self, lr: np.ndarray, scale: int, **params: Any) -> np.ndarray:
        return _to255(self.run("restore", {"image": lr}, {"task": "upscale", "scale": int(scale), **params}))

    def dejpeg(self, decoded: np.ndarray, quality: int | None, **params: Any) -> np.ndarray:
        return _to255(self.run("restore", {"image": decoded}, {"task": "jpeg", "quality": quality, **params}))

    def inpaint(self, image: np.ndarray, mask: np.ndarray, **params: Any) -> np.ndarray:
        m = np.asarray(mask, dtype=np.uint8)
        if m.ndim == 2:
            m = m[:, :, None]
        return _to255(self.run("inpaint", {"image": image, "mask": m}, dict(params)))

    def stylize(self, image: np.ndarray, style: np.ndarray, **params: Any) -> np.ndarray:
        return _to255(self.run("stylize", {"image": image, "style": style}, dict(params)))
