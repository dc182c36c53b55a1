"""The engine's operation schemas as the plug-ins see them: a snapshot until an engine answers.

Editors declare their dialogs before any engine is reachable (GIMP registers its procedure
arguments at start-up; Krita draws its panel before `welcome` arrives). Both read the same
snapshot, `ops_schema.json` beside this module: exactly what the engine publishes as
`welcome["ops"]`, written by `make schema` (tools/ops_schema.py) and checked against a real
engine by tests/test_plugin_schema.py. Once an engine answers, its own `welcome` wins.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any, Mapping

SNAPSHOT_FILE = "ops_schema.json"
SNAPSHOT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), SNAPSHOT_FILE)

Spec = Mapping[str, Any]  # one parameter: {"type", "default", "doc", "min", "max", "choices", "nullable"}


def dump(ops: Mapping[str, Any]) -> str:
    """The snapshot's text: keys in the order the engine publishes them (ops by name, then each
    op's parameters in declaration order), so regenerating an unchanged engine changes nothing."""
    return json.dumps(ops, indent=1, ensure_ascii=False) + "\n"


@lru_cache(maxsize=1)
def snapshot() -> dict[str, Any]:
    """The shipped `welcome["ops"]` snapshot (read once per process)."""
    with open(SNAPSHOT_PATH, encoding="utf-8") as f:
        return json.load(f)


def op_params(op: str, welcome: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]] | None:
    """`op`'s parameter schemas: the connected engine's when there is a `welcome`, else the
    snapshot's; None when that source has no such op."""
    return _op_part(op, welcome, "params")


def op_inputs(op: str, welcome: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]] | None:
    """`op`'s declared inputs ({name: {"required", "doc", ...}}), from the same source as op_params."""
    return _op_part(op, welcome, "inputs")


def _op_part(op: str, welcome: Mapping[str, Any] | None, part: str) -> dict[str, dict[str, Any]] | None:
    ops = (welcome.get("ops") or {}) if welcome is not None else snapshot()
    schema = ops.get(op)
    if not isinstance(schema, Mapping):
        return None
    return {name: dict(spec) for name, spec in (schema.get(part) or {}).items()}


def is_number(spec: Spec) -> bool:
    return spec.get("type") in ("int", "float")


def choices(spec: Spec) -> list[Any]:
    """The values an enum allows (may be numbers, e.g. an upscale factor); [] for other types."""
    return list(spec.get("choices") or []) if spec.get("type") == "enum" else []


def coerce(value: Any, spec: Spec) -> Any:
    """A form's value as the engine wants it (type, range, choice, null).

    Empty means null where the parameter allows it, else its default. Raises ValueError
    with the reason ("must be at most 1") for the caller to prefix with the field's label.
    """
    kind = spec.get("type")
    if value is None or value == "":
        return None if spec.get("nullable") else spec.get("default")
    allowed = choices(spec)
    if allowed:
        for choice in allowed:
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
    if kind == "bool":
        return bool(value)
    if kind in ("int", "float"):
        number: float | int = float(value)
        if kind == "int":
            number = int(round(number))
        lo, hi = spec.get("min"), spec.get("max")
        if lo is not None and number < lo:
            raise ValueError(f"must be at least {lo:g}")
        if hi is not None and number > hi:
            raise ValueError(f"must be at most {hi:g}")
        return number
    return str(value)
