"""The engine's operations: one module per op, each exporting OPERATION.

Adding an operation is one line in MODULES. A listed module that fails to import stops the
engine at start-up: a missing op is a bug, not a smaller engine.
"""
from __future__ import annotations

import importlib

from .base import Operation

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
        op: Operation = importlib.import_module(f"{__name__}.{name}").OPERATION
        ops[op.name] = op
    return ops


OPERATIONS: dict[str, Operation] = load_operations()
