"""What every operation declares (inputs, parameter schema) and what it receives (a job context).

The server validates a `submit` against these declarations before queueing, and `welcome`
publishes them, so plug-ins build their dialogs from the same source of truth.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import BAD_PARAM, TOO_LARGE, EngineError, JobCancelled


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: type is 'int', 'float', 'bool', 'str' or 'enum' (with choices)."""

    name: str
    type: str
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False  # None allowed (e.g. seed=None means random, sigma=None means auto)
    limit_code: str = BAD_PARAM  # TOO_LARGE for caps such as steps and variants

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": self.type, "default": self.default, "doc": self.doc}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.choices is not None:
            d["choices"] = list(self.choices)
        if self.nullable:
            d["nullable"] = True
        return d

    def validate(self, value: Any) -> Any:
        """Return the value coerced to the declared type, or raise EngineError(bad_param)."""
        where = f"params.{self.name}"
        if value is None:
            if self.nullable:
                return None
            raise EngineError(BAD_PARAM, f"{self.name} must not be null", where)
        if self.type == "bool":
            if not isinstance(value, bool):
                raise EngineError(BAD_PARAM, f"{self.name} must be true or false, got {type(value).__name__}", where)
            return value
        if self.type in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EngineError(BAD_PARAM, f"{self.name} must be a number, got {type(value).__name__}", where)
            if isinstance(value, float) and not math.isfinite(value):
                raise EngineError(BAD_PARAM, f"{self.name} must be finite, got {value}", where)
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise EngineError(BAD_PARAM, f"{self.name} must be a whole number, got {value}", where)
                value = int(value)
            else:
                value = float(value)
            if self.min is not None and value < self.min:
                raise EngineError(BAD_PARAM, f"{self.name} must be at least {self.min}, got {value}", where)
            if self.max is not None and value > self.max:
                raise EngineError(self.limit_code, f"{self.name} must be at most {self.max}, got {value}", where)
            return value
        if self.type in ("str", "enum"):
            if not isinstance(value, str):
                raise EngineError(BAD_PARAM, f"{self.name} must be a string, got {type(value).__name__}", where)
            if self.choices is not None and value not in self.choices:
                raise EngineError(BAD_PARAM, f"{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}", where)
            if len(value) > 4096:
                raise EngineError(BAD_PARAM, f"{self.name} is too long", where)
            return value
        raise AssertionError(f"unknown param type {self.type}")


@dataclass(frozen=True)
class InputSpec:
    """One input array. channels lists what is accepted (1 = grey/mask, 3 = RGB, 4 = RGBA)."""

    name: str
    required: bool = True
    channels: tuple[int, ...] = (3, 4)
    dtypes: tuple[str, ...] = ("u8", "u16", "f32")
    doc: str = ""

    def to_dict(self) -> dict:
        return {"required": self.required, "channels": list(self.channels), "dtypes": list(self.dtypes), "doc": self.doc}


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
    """An engine operation: its declaration and the function that runs it."""

    name: str
    doc: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    run: Callable[[dict[str, np.ndarray], dict[str, Any], JobContext], tuple[dict[str, np.ndarray], dict]]
    test_only: bool = False
    needs_model: bool = True
    cost: Callable[[dict[str, np.ndarray], dict[str, Any]], int] | None = field(default=None, repr=False)

    def schema(self) -> dict:
        return {
            "doc": self.doc,
            "inputs": {i.name: i.to_dict() for i in self.inputs},
            "params": {p.name: p.to_dict() for p in self.params},
            "test_only": self.test_only,
        }

    def validate_params(self, params: Any) -> dict[str, Any]:
        """Fill defaults, reject unknown names, coerce types; raise EngineError."""
        if not isinstance(params, dict):
            raise EngineError(BAD_PARAM, "params must be a map", "params")
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise EngineError(BAD_PARAM, f"unknown parameter {key!r} for {self.name}; known: {', '.join(known) or 'none'}",
                                  f"params.{key}")
        return {name: spec.validate(params.get(name, spec.default)) for name, spec in known.items()}


def check_limit(value: int, limit: int, what: str, field_name: str) -> None:
    """Raise too_large with a message saying the limit."""
    if value > limit:
        raise EngineError(TOO_LARGE, f"{what} {value} exceeds the engine limit {limit}", field_name)
