"""What every operation declares (inputs, parameters, rules; the kinds live in specs.py) and
what it receives (a job context).

The server checks a `submit` against the declaration before queueing (`check_submit`), and
`welcome` publishes it with the engine's limits folded in, so the plug-ins' dialogs, the
command line and the Python client are built from the same source of truth.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import BAD_PARAM, UNKNOWN_OP, EngineError, JobCancelled
from .specs import InputSpec, ModelCatalog, ParamSpec, Rule

__all__ = ["InputSpec", "JobContext", "Operation", "ParamSpec", "check_submit"]


class JobContext:
    """Given to Operation.run: progress reporting, cancellation, models, device.

    `report` is called by the scheduler's worker; it must be cheap and thread-safe.
    """

    def __init__(self, job_id: str, report: Callable[[dict], None] | None = None,
                 models: Any = None, device: str = "cpu", preview_every: int = 4,
                 cancel_event: threading.Event | None = None):
        self.job_id = job_id
        self._report = report
        self.models = models
        self.device = device
        self.preview_every = max(1, preview_every)
        self.cancel_event = cancel_event or threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(self.job_id)

    def progress(self, step: int, total: int, stage: str, preview: np.ndarray | None = None) -> None:
        """Report one step; raise JobCancelled if the job was cancelled meanwhile.

        `preview` is a small (h, w, 3|4) u8 array; the caller decides when to send one
        (see `wants_preview`).
        """
        if self._report is not None:
            event: dict[str, Any] = {"step": int(step), "total": int(total), "stage": stage}
            if preview is not None:
                event["preview"] = preview
            self._report(event)
        self.check_cancelled()

    def wants_preview(self, step: int, total: int) -> bool:
        return step == total or step % self.preview_every == 0


@dataclass
class Operation:
    """An engine operation: its declaration (inputs, parameters, rules between them) and the
    function that runs it. `run` gets inputs and parameters that passed `check`, so it
    never checks them again."""

    name: str
    doc: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    run: Callable[[dict[str, np.ndarray], dict[str, Any], JobContext], tuple[dict[str, np.ndarray], dict]]
    rules: tuple[Rule, ...] = ()
    test_only: bool = False

    def schema(self, limits: Any) -> dict:
        """The op as `welcome.ops` publishes it, with the engine's limits folded in."""
        return {
            "doc": self.doc,
            "inputs": {i.name: i.to_dict() for i in self.inputs},
            "params": {p.name: p.bounded(limits).to_dict() for p in self.params},
            "rules": [r.to_dict(limits) for r in self.rules],
            "test_only": self.test_only,
        }

    def check(self, inputs: dict[str, np.ndarray], params: Any, limits: Any,
              models: ModelCatalog | None = None) -> dict[str, Any]:
        """Everything about a request that can be checked before it is queued: the inputs, the
        parameters (defaults filled in, types coerced) and the rules. Returns the parameters;
        raises EngineError."""
        specs = {s.name: s for s in self.inputs}
        for key in inputs:
            if key not in specs:
                raise EngineError(BAD_PARAM, f"unknown input {key!r} for {self.name}; it takes: {', '.join(specs)}",
                                  f"inputs.{key}")
        for spec in self.inputs:
            arr = inputs.get(spec.name)
            if arr is not None:
                spec.check(arr, inputs, self.name)
            elif spec.required:
                raise EngineError(BAD_PARAM, f"{self.name} needs the input {spec.name!r}", f"inputs.{spec.name}")
        if not isinstance(params, dict):
            raise EngineError(BAD_PARAM, "params must be a map", "params")
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise EngineError(BAD_PARAM, f"unknown parameter {key!r} for {self.name}; known: "
                                  f"{', '.join(known) or 'none'}", f"params.{key}")
        # A model the client names must be listed now; a default one is looked up when the job
        # needs it (inpaint with method=patch runs without any model).
        values = {name: spec.bounded(limits).validate(params[name], models) if name in params
                  else spec.bounded(limits).validate(spec.default) for name, spec in known.items()}
        for rule in self.rules:
            rule.check(inputs, values, known, limits)
        return values


def check_submit(msg: dict, ops: dict[str, Operation], limits: Any,
                 models: ModelCatalog | None = None) -> tuple[Operation, dict, dict]:
    """A decoded `submit` checked against its op's declaration; raises EngineError."""
    op = ops.get(msg["op"])
    if op is None:
        raise EngineError(UNKNOWN_OP, f"unknown op {msg['op']!r}; this engine has: {', '.join(sorted(ops)) or 'none'}",
                          "op")
    inputs: dict[str, np.ndarray] = msg["inputs"]
    return op, inputs, op.check(inputs, msg.get("params", {}), limits, models)
