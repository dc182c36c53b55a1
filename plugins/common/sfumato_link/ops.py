"""Host-independent pieces of "run an op from an editor": params against the schema, result names.

The editors declare their dialogs before any engine is reachable, so their parameters can
drift from what a given engine offers; `fit_params` keeps the ones the engine's `welcome`
schema knows and says which it dropped, instead of letting the engine reject the job.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import LinkError
from .wire import Array

# What "Remove Object" means: replace the selection completely, with more surroundings
# considered than a plain inpaint, and the method the engine chooses by default.
REMOVE_PARAMS = {"strength": 1.0, "variants": 1}
REMOVE_CONTEXT_FRACTION = 0.5

# the main parameters shown in a result layer's name, per op
NAME_KEYS = {
    "inpaint": ("strength", "seed"),
    "remove": ("seed",),
    "restore": ("task", "scale", "seed"),
    "stylize": ("style_model", "strength", "structure", "seed"),
    "generate": ("tileable", "seed"),
}


def op_schema(welcome: Mapping[str, Any] | None, op: str) -> dict[str, Any] | None:
    if not welcome:
        return None
    ops = welcome.get("ops") or {}
    return ops.get(op)


def require_op(welcome: Mapping[str, Any] | None, op: str) -> dict[str, Any]:
    """The op's schema, or LinkError(unknown_op) naming what the engine does offer."""
    schema = op_schema(welcome, op)
    if schema is None:
        offered = ", ".join(sorted(k for k, v in ((welcome or {}).get("ops") or {}).items()
                                   if not (isinstance(v, dict) and v.get("test_only"))))
        raise LinkError("unknown_op", f"this engine offers: {offered or 'nothing yet'}", op=op)
    return schema


def fit_params(welcome: Mapping[str, Any] | None, op: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep params the engine's schema for `op` declares; drop the rest (returned as a list).

    Without a schema (an engine that has not said), everything is kept.
    """
    schema = op_schema(welcome, op)
    if schema is None or not isinstance(schema.get("params"), dict):
        return dict(params), []
    known = schema["params"]
    kept = {k: v for k, v in params.items() if k in known}
    return kept, sorted(k for k in params if k not in known)


def param_default(welcome: Mapping[str, Any] | None, op: str, name: str, fallback: Any = None) -> Any:
    schema = op_schema(welcome, op) or {}
    spec = (schema.get("params") or {}).get(name)
    return spec.get("default", fallback) if isinstance(spec, dict) else fallback


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


def layer_name(label: str, params: Mapping[str, Any], meta: Mapping[str, Any] | None = None,
               keys: tuple[str, ...] = (), variant: int = 0) -> str:
    """'Sfumato inpaint (strength 0.8, seed 42)': the op and its main parameters, seed as used."""
    merged = dict(params)
    if meta and meta.get("seed") is not None:
        merged["seed"] = meta["seed"]
    parts = [f"{k.replace('_', ' ')} {_short(merged[k])}" for k in keys
             if merged.get(k) not in (None, "")]
    name = f"Sfumato {label}"
    if parts:
        name += f" ({', '.join(parts)})"
    if variant:
        name += f" #{variant + 1}"
    return name


def ordered_outputs(outputs: Mapping[str, Array], base: str = "image") -> list[tuple[str, Array]]:
    """('image', a), ('image_1', b), ... in variant order; other outputs are ignored."""
    found = []
    for name, value in outputs.items():
        if name == base:
            found.append((0, name, value))
        else:
            m = re.fullmatch(re.escape(base) + r"_(\d+)", name)
            if m:
                found.append((int(m.group(1)), name, value))
    return [(name, value) for _, name, value in sorted(found, key=lambda t: t[0])]


def seed_param(seed: int) -> int | None:
    """Editors use -1 for "random"; the protocol uses null."""
    return None if seed is None or seed < 0 else int(seed)
