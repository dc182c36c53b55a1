"""Import spandrel, the optional library that detects and builds checkpoint architectures.

spandrel imports torchvision. torchvision's compiled operators only load next to a torch of
the same build (CPU with CPU, CUDA with CUDA); a mismatched pair fails at `import torchvision`
because torchvision then declares fake kernels for operators (nms, qnms) that were never
registered. spandrel uses none of those operators, so when exactly that failure happens the
two operator schemas are declared first (in torch's in-memory operator registry; nothing
installed is changed) and the import is retried. Any other failure is reported as it is.

spandrel_extra_arches, when installed, adds the architectures spandrel keeps apart for their
restrictive licences (MAT, the inpainting transformer, among them); it is not part of the zoo
extra, so a user opts into those licences by installing it.
"""
from __future__ import annotations

import sys
import threading
from types import ModuleType

EXTRA_HINT = ("the model zoo needs the optional dependency spandrel: pip install 'sfumato[zoo]' "
              "(from a checkout: make test installs it; see docs/models.md)")
_MISSING_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lock = threading.Lock()
_declared: list = []  # keeps the torch.library.Library alive: dropping it removes the schemas
_extras: list[bool] = []  # set once spandrel_extra_arches was looked for


class ZooUnavailable(RuntimeError):
    """spandrel is not installed or cannot be imported; the message says how to enable it."""


def _forget(prefixes: tuple[str, ...]) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in prefixes]:
        del sys.modules[name]


def _declare_torchvision_ops() -> None:
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    for schema in _MISSING_OPS:
        lib.define(schema)
    _declared.append(lib)


def spandrel() -> ModuleType:
    """The spandrel module; ZooUnavailable (with the install hint) when it cannot be used."""
    with _lock:
        try:
            import spandrel as sp
            return _with_extras(sp)
        except ImportError as exc:
            raise ZooUnavailable(f"{EXTRA_HINT} ({exc})") from exc
        except RuntimeError as exc:
            if "torchvision::" not in str(exc) or _declared:
                raise ZooUnavailable(f"{EXTRA_HINT}; importing it failed: {exc}") from exc
        _forget(("torchvision", "spandrel"))  # drop the half-imported modules before retrying
        _declare_torchvision_ops()
        try:
            import spandrel as sp
            return _with_extras(sp)
        except (ImportError, RuntimeError) as exc:
            raise ZooUnavailable(f"{EXTRA_HINT}; importing it failed: {exc}") from exc


def _with_extras(sp: ModuleType) -> ModuleType:
    """spandrel, with spandrel_extra_arches' architectures registered when that is installed."""
    if not _extras:
        _extras.append(True)
        try:
            import spandrel_extra_arches
        except ImportError:
            return sp
        spandrel_extra_arches.install(ignore_duplicates=True)
    return sp


def available() -> bool:
    try:
        spandrel()
        return True
    except ZooUnavailable:
        return False
