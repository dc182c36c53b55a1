"""The request rules an operation declares: its parameters, its inputs and the rules that tie
them together.

Each kind checks a value itself and describes itself for `welcome` (`to_dict`), so what the
engine enforces and what it publishes are one piece of code. The engine's own limits (steps,
variants, sides, pixels) enter through `limits`: a parameter names the limit that also bounds
it (`cap`), and a pixel rule without its own maximum takes the engine's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Protocol

import numpy as np

from ..errors import BAD_PARAM, TOO_LARGE, EngineError
from ..protocol import DTYPE_NAMES

PARAM_TYPES = ("int", "float", "bool", "str", "enum", "multi", "model")
MAX_TEXT = 4096  # longest string parameter
DENOISERS = ("base", "style")  # model kinds (welcome.models[].kind) that serve as a diffusion prior
ZOO = "zoo"  # the kind of another project's checkpoint (engine/zoo): it serves the tasks it lists


class ModelCatalog(Protocol):
    """What validation needs from the model registry (engine/registry.py)."""

    def require(self, name: str, kinds: tuple[str, ...], field: str) -> None:
        """Raise EngineError unless `name` is a listed model of one of `kinds`."""


def split_list(text: str) -> list[str]:
    """'jpeg, Denoise' -> ['jpeg', 'denoise']: the items of a `multi` parameter."""
    return [t.strip().lower() for t in str(text).split(",") if t.strip()]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    type: 'int', 'float', 'bool', 'str'; 'enum' (one of `choices`, strings or numbers);
    'multi' (a comma list of `choices`, where an `exclusive` choice must stand alone);
    'model' (the name of a listed model of one of `model_kinds`).
    `cap` names the engine limit (a `Limits` field) that bounds the value as well as `max`.
    """

    name: str
    type: str
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False  # None allowed (e.g. seed=None means random, sigma=None means auto)
    limit_code: str = BAD_PARAM  # TOO_LARGE for caps such as steps and variants
    cap: str | None = None  # e.g. "max_steps": the engine's limit applies too
    exclusive: tuple[str, ...] = ()  # multi: choices that cannot be combined with others
    model_kinds: tuple[str, ...] = ()  # model: the kinds of model (welcome.models[].kind) accepted

    def __post_init__(self) -> None:
        assert self.type in PARAM_TYPES, f"unknown param type {self.type}"
        assert self.type not in ("enum", "multi") or self.choices, f"{self.name}: {self.type} needs choices"
        assert self.type != "model" or self.model_kinds, f"{self.name}: a model parameter needs model_kinds"

    def bounded(self, limits: Any) -> "ParamSpec":
        """This spec with the engine limit it names folded into `max`."""
        if self.cap is None:
            return self
        cap = getattr(limits, self.cap)
        return replace(self, max=cap if self.max is None else min(self.max, cap))

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
        if self.cap is not None:
            d["limit"] = self.cap
        if self.limit_code != BAD_PARAM:
            d["max_code"] = self.limit_code
        if self.exclusive:
            d["exclusive"] = list(self.exclusive)
        if self.model_kinds:
            d["model_kinds"] = list(self.model_kinds)
        return d

    def validate(self, value: Any, models: ModelCatalog | None = None) -> Any:
        """Return the value coerced to the declared type, or raise EngineError(bad_param).

        A model name is checked against `models` (when given)."""
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
            return self._number(value, self.type, where)
        if self.type == "enum" and all(isinstance(c, int) for c in self.choices or ()):
            value = self._number(value, "int", where)
        elif not isinstance(value, str):
            raise EngineError(BAD_PARAM, f"{self.name} must be a string, got {type(value).__name__}", where)
        elif len(value) > MAX_TEXT:
            raise EngineError(BAD_PARAM, f"{self.name} is too long", where)
        if self.type == "enum" and value not in (self.choices or ()):
            raise EngineError(BAD_PARAM, f"{self.name} must be one of {', '.join(map(str, self.choices or ()))}; "
                              f"got {value!r}", where)
        if self.type == "multi":
            self._multi(value, where)
        if self.type == "model" and models is not None:
            models.require(value, self.model_kinds, where)
        return value

    def _number(self, value: Any, kind: str, where: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EngineError(BAD_PARAM, f"{self.name} must be a number, got {type(value).__name__}", where)
        if isinstance(value, float) and not math.isfinite(value):
            raise EngineError(BAD_PARAM, f"{self.name} must be finite, got {value}", where)
        if kind == "int":
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

    def _multi(self, value: str, where: str) -> None:
        names, known = split_list(value), ", ".join(map(str, self.choices or ()))
        if not names:
            raise EngineError(BAD_PARAM, f"{self.name} is empty; use one or more of {known}", where)
        unknown = [t for t in names if t not in (self.choices or ())]
        if unknown:
            raise EngineError(BAD_PARAM, f"unknown {self.name} {unknown[0]!r}; use one or more of {known} "
                              "(comma separated)", where)
        alone = [t for t in names if t in self.exclusive]
        if alone and len(names) > 1:
            raise EngineError(BAD_PARAM, f"{alone[0]} cannot be combined with other {self.name} values", where)


@dataclass(frozen=True)
class InputSpec:
    """One input array. channels lists what is accepted (1 = grey/mask, 3 = RGB, 4 = RGBA);
    `same_size_as` names the input whose height and width this one must have."""

    name: str
    required: bool = True
    channels: tuple[int, ...] = (3, 4)
    dtypes: tuple[str, ...] = ("u8", "u16", "f32")
    doc: str = ""
    same_size_as: str | None = None
    min_side: int = 1

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"required": self.required, "channels": list(self.channels),
                             "dtypes": list(self.dtypes), "doc": self.doc}
        if self.same_size_as is not None:
            d["same_size_as"] = self.same_size_as
        if self.min_side > 1:
            d["min_side"] = self.min_side
        return d

    def check(self, arr: np.ndarray, inputs: Mapping[str, np.ndarray], op: str) -> None:
        """Raise EngineError(bad_param) unless `arr` (a decoded [h, w, c] array) fits."""
        where = f"inputs.{self.name}"
        if arr.shape[2] not in self.channels:
            raise EngineError(BAD_PARAM, f"{self.name} has {arr.shape[2]} channel(s); {op} accepts "
                              f"{', '.join(map(str, self.channels))}", where)
        dtype = DTYPE_NAMES[arr.dtype.name]
        if dtype not in self.dtypes:
            raise EngineError(BAD_PARAM, f"{self.name} is {dtype}; {op} accepts {', '.join(self.dtypes)}", where)
        if min(arr.shape[:2]) < self.min_side:
            raise EngineError(BAD_PARAM, f"{self.name} must be at least {self.min_side} pixels on each side, "
                              f"got {arr.shape[1]}x{arr.shape[0]}", where)
        other = inputs.get(self.same_size_as) if self.same_size_as else None
        if other is not None and arr.shape[:2] != other.shape[:2]:
            raise EngineError(BAD_PARAM, f"{self.name} is {arr.shape[1]}x{arr.shape[0]} but {self.same_size_as} "
                              f"is {other.shape[1]}x{other.shape[0]}; they must match", where)


# ---- rules between fields: each names fields as "inputs.NAME" or "params.NAME" ----------


def _given(ref: str, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    """The value a field reference names (None when absent or null)."""
    kind, _, name = ref.partition(".")
    return (inputs if kind == "inputs" else params).get(name)


def _holds(when: tuple[tuple[str, Any], ...], params: Mapping[str, Any], specs: Mapping[str, ParamSpec]) -> bool:
    """True when every (param, value) condition holds; a `multi` parameter holds a value it lists."""
    for name, wanted in when:
        value = params.get(name)
        if specs[name].type == "multi":
            if wanted not in split_list(value or ""):
                return False
        elif value != wanted:
            return False
    return True


@dataclass(frozen=True)
class Size:
    """Two int parameters that together give an output size, width x height: the CLI shows
    them as one `--size WxH` and client calls take them as two positional arguments."""

    width: str = "width"
    height: str = "height"

    def to_dict(self, limits: Any) -> dict:
        return {"kind": "size", "width": self.width, "height": self.height}

    def check(self, inputs: Mapping[str, Any], params: Mapping[str, Any], specs: Mapping[str, ParamSpec],
              limits: Any) -> None:
        """Nothing beyond the two parameters' own bounds (their `cap` is the engine's max_side)."""


@dataclass(frozen=True)
class Pixels:
    """The pixels a job produces: the product of `of` (an input counts height x width, a
    parameter its value) may not exceed `max`, nor the engine's `max_pixels` (too_large)."""

    of: tuple[str, ...]
    field: str
    max: int | None = None
    when: tuple[tuple[str, Any], ...] = ()
    doc: str = ""

    def limit(self, limits: Any) -> int:
        return limits.max_pixels if self.max is None else min(self.max, limits.max_pixels)

    def to_dict(self, limits: Any) -> dict:
        return {"kind": "pixels", "of": list(self.of), "max": self.limit(limits), "when": dict(self.when),
                "field": self.field, "doc": self.doc}

    def check(self, inputs: Mapping[str, Any], params: Mapping[str, Any], specs: Mapping[str, ParamSpec],
              limits: Any) -> None:
        if not _holds(self.when, params, specs):
            return
        total = 1
        for ref in self.of:
            value = _given(ref, inputs, params)
            if value is None:
                return
            total *= int(value.shape[0] * value.shape[1]) if isinstance(value, np.ndarray) else int(value)
        cap = self.limit(limits)
        if total > cap:
            label = " x ".join(ref.partition(".")[2] for ref in self.of)
            raise EngineError(TOO_LARGE, f"{label} = {total} pixels exceeds the limit of {cap}"
                              + (f" ({self.doc})" if self.doc else ""), self.field)


@dataclass(frozen=True)
class Require:
    """Of the fields `of`, at least `least` and at most `most` must be given (not absent or
    null) when the `when` conditions hold; `doc` is the message when they are not."""

    of: tuple[str, ...]
    doc: str
    least: int = 1
    most: int | None = None
    when: tuple[tuple[str, Any], ...] = ()

    def to_dict(self, limits: Any) -> dict:
        return {"kind": "require", "of": list(self.of), "min": self.least, "max": self.most,
                "when": dict(self.when), "doc": self.doc}

    def check(self, inputs: Mapping[str, Any], params: Mapping[str, Any], specs: Mapping[str, ParamSpec],
              limits: Any) -> None:
        if not _holds(self.when, params, specs):
            return
        given = [ref for ref in self.of if _given(ref, inputs, params) is not None]
        if len(given) < self.least:
            raise EngineError(BAD_PARAM, self.doc, self.of[0])
        if self.most is not None and len(given) > self.most:
            raise EngineError(BAD_PARAM, self.doc, given[self.most])


Rule = Size | Pixels | Require
