"""Arrays as the protocol wants them: [h, w, c] uint8, uint16 or float32, from numpy arrays
or PIL images (the Python client and the command line accept either)."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_array(value: Any, name: str = "input") -> np.ndarray:
    """numpy array or PIL image -> [h, w, c] uint8/uint16/float32 array as the protocol wants."""
    if not isinstance(value, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is not None and isinstance(value, Image.Image):
            value = _pil_to_array(value)
        else:
            raise TypeError(f"{name} must be a numpy array or a PIL image, got {type(value).__name__}")
    arr = value
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} must be [h, w] or [h, w, 1|3|4], got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype in (np.float64, np.float16):
        arr = arr.astype(np.float32)
    elif arr.dtype not in (np.uint8, np.uint16, np.float32):
        raise TypeError(f"{name} must be uint8, uint16 or float32 (or bool/float64), got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _pil_to_array(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.uint8)[:, :, None]
    if mode.startswith("I;16"):
        return np.asarray(img, dtype=np.uint16).reshape(img.height, img.width, 1)
    if mode == "I":
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16)[:, :, None]
    if mode == "F":
        return np.asarray(img, dtype=np.float32)[:, :, None]
    if mode in ("RGB", "RGBA"):
        return np.asarray(img)
    has_alpha = mode in ("LA", "PA", "RGBa", "La") or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
