"""Which device the engine computes on, and how much work each kind of device takes at once.

The sizes are one table, so tuning for a device is one edit: what a laptop CPU finishes in
seconds, and what a GPU holds in memory.
"""
from __future__ import annotations

import torch

# Longest side in pixels, per device kind and op:
#   inpaint: the work area the sampler sees (images.work_cap; $SFUMATO_WORK_CAP overrides it)
#   inpaint_zoo: the work area a size-flexible zoo inpainting network (LaMa) sees; larger areas
#            are processed downscaled and only the fill is enlarged (tasks/inpaint_zoo.py)
#   stylize: the side the sampler works at (style-model path), unless the request gives `resolution`
#   stylize_patch: the side the painting's patches are synthesised at (reference path), likewise
#   restore: the output tile side, unless the request gives `tile`: a power-of-two side plus
#            room for the overlap, so a 1024 (2048) image is 2x2 tiles rather than 3x3
WORK_SIDE: dict[str, dict[str, int]] = {
    "cpu": {"inpaint": 256, "inpaint_zoo": 1024, "stylize": 384, "stylize_patch": 512, "restore": 576},
    "cuda": {"inpaint": 768, "inpaint_zoo": 2048, "stylize": 1024, "stylize_patch": 512, "restore": 1088},
}


def resolve_device(name: str) -> str:
    """'auto' picks CUDA when present; an unavailable device is a clear error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return name


def device_kind(device: str | torch.device) -> str:
    """'cuda' for any CUDA device ('cuda', 'cuda:1'), else 'cpu': the key of WORK_SIDE."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def work_side(op: str, device: str | torch.device) -> int:
    """The longest side `op` works at on this device (WORK_SIDE)."""
    return WORK_SIDE[device_kind(device)][op]


def free_memory(device: str | torch.device) -> int | None:
    """Bytes the device can still give: free GPU memory, or the system's available memory for a
    CPU (MemAvailable); None where it cannot be read."""
    if device_kind(device) == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None

