"""The engine's operations: one module per op, each exporting OPERATION.

Adding an operation is one line in MODULES. A listed module that is not there yet (an op
still being written) is skipped, so the engine answers `unknown_op` for it instead of
failing to start.
"""
from __future__ import annotations

import importlib
import logging

from .base import Operation

log = logging.getLogger("sfumato.tasks")

MODULES = [
    "echo",
    "inpaint", "generate",
    "restore", "stylize",
    "pattern", "recolor",
]


def load_operations() -> dict[str, Operation]:
    """Import every listed module and collect its OPERATION, keyed by op name."""
    ops: dict[str, Operation] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the module exists but one of its imports is missing: a real bug
            log.warning("operation module engine.tasks.%s is not installed; %s answers unknown_op", name, name)
            continue
        op: Operation = module.OPERATION
        ops[op.name] = op
    return ops


OPERATIONS: dict[str, Operation] = load_operations()
