"""The docker's operations: what each button sends, which parameters it shows, how results are named.

Five artist-facing operations map onto the engine's four: "Remove" is `inpaint` at full
strength with a wider context. Parameter schemas come from the engine's `welcome`; the
fallback schemas below only let the panel draw itself before an engine has answered, and a
parameter the connected engine does not declare is never sent.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class UiOp:
    """One entry of the operation picker."""

    key: str
    label: str
    engine_op: str
    fields: tuple[str, ...]  # engine parameters shown in the panel, in order
    fixed: Mapping[str, Any] = field(default_factory=dict)  # always sent, not shown
    selection: str = "optional"  # "required": needs a selection; "optional": none = whole layer; "size"
    context: float = 0.25  # context around the selection, as a fraction of its larger side
    style_input: bool = False  # takes a reference image (stylize)
    tip: str = ""

    @property
    def action_id(self) -> str:
        return f"sfumato_{self.key}"


OPS: tuple[UiOp, ...] = (
    UiOp("inpaint", "Inpaint", "inpaint", ("strength", "steps", "seed", "variants", "method", "model"),
         selection="required", tip="Fill the selection so that it matches its surroundings."),
    UiOp("remove", "Remove", "inpaint", ("steps", "seed", "variants"), fixed={"strength": 1.0},
         selection="required", context=0.5,
         tip="Remove the selected object: inpaint at full strength with a wide context."),
    UiOp("restore", "Restore", "restore", ("task", "scale", "sigma", "steps", "seed", "model"),
         tip="Denoise, remove JPEG artefacts, upscale, deblur or repair the selection or layer."),
    UiOp("stylize", "Stylize", "stylize", ("style_model", "strength", "structure", "guidance", "palette", "steps",
                                           "seed", "model"),
         style_input=True, tip="Re-render the selection or layer in the style of a reference image or model."),
    UiOp("pattern", "Generate pattern", "generate", ("tileable", "steps", "seed", "variants", "model"),
         selection="size", tip="Generate a new (seamless) pattern the size of the selection or canvas."),
)
BY_KEY = {op.key: op for op in OPS}

RESTORE_TASKS = ("auto", "denoise", "jpeg", "upscale", "deblur", "repair", "denoise,jpeg", "deblur,denoise")

# What the contracts promise, used until an engine's welcome replaces it.
FALLBACK_SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "inpaint": {
        "strength": {"type": "float", "default": 1.0, "min": 0.0, "max": 1.0},
        "steps": {"type": "int", "default": 20, "min": 1, "max": 200},
        "seed": {"type": "int", "default": None, "min": 0, "max": 2**31 - 1, "nullable": True},
        "variants": {"type": "int", "default": 1, "min": 1, "max": 8},
        "method": {"type": "enum", "default": "diffusion", "choices": ["diffusion", "patch"]},
    },
    "restore": {
        "task": {"type": "str", "default": "auto"},
        "scale": {"type": "int", "default": 2, "min": 2, "max": 4},
        "sigma": {"type": "float", "default": None, "min": 0.0, "max": 100.0, "nullable": True},
        "steps": {"type": "int", "default": 20, "min": 1, "max": 200},
        "seed": {"type": "int", "default": None, "min": 0, "max": 2**31 - 1, "nullable": True},
    },
    "stylize": {
        "style_model": {"type": "str", "default": None, "nullable": True},
        "strength": {"type": "float", "default": 0.6, "min": 0.0, "max": 1.0},
        "structure": {"type": "float", "default": 0.5, "min": 0.0, "max": 1.0},
        "steps": {"type": "int", "default": 20, "min": 1, "max": 200},
        "seed": {"type": "int", "default": None, "min": 0, "max": 2**31 - 1, "nullable": True},
    },
    "generate": {
        "tileable": {"type": "bool", "default": True},
        "steps": {"type": "int", "default": 20, "min": 1, "max": 200},
        "seed": {"type": "int", "default": None, "min": 0, "max": 2**31 - 1, "nullable": True},
        "variants": {"type": "int", "default": 1, "min": 1, "max": 8},
    },
}

PARAM_LABELS = {"strength": "Strength", "steps": "Steps", "seed": "Seed", "variants": "Variants",
                "method": "Method", "task": "Task", "scale": "Scale", "style_model": "Style model",
                "structure": "Structure", "tileable": "Tileable", "model": "Model", "sigma": "Noise level",
                "guidance": "Style force", "palette": "Palette"}


def engine_schema(ui: UiOp, welcome: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """The engine op's parameter schema from `welcome`; the fallback without one; None if the engine lacks the op."""
    if welcome is None:
        return FALLBACK_SCHEMAS.get(ui.engine_op, {})
    op = (welcome.get("ops") or {}).get(ui.engine_op)
    if op is None:
        return None
    return dict(op.get("params") or {})


def shown_fields(ui: UiOp, schema: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, spec) of the parameters to draw: the op's fields the engine declares, not fixed ones."""
    return [(name, dict(schema[name])) for name in ui.fields if name in schema and name not in ui.fixed]


def coerce(value: Any, spec: Mapping[str, Any]) -> Any:
    """A widget's value as the engine wants it (type, range, null); raises ValueError with a readable reason."""
    kind = spec.get("type")
    if value is None or value == "":
        if spec.get("nullable"):
            return None
        return spec.get("default")
    if kind == "bool":
        return bool(value)
    if kind in ("int", "float"):
        number = float(value)
        if kind == "int":
            number = int(round(number))
        lo, hi = spec.get("min"), spec.get("max")
        if lo is not None and number < lo:
            raise ValueError(f"must be at least {lo}")
        if hi is not None and number > hi:
            raise ValueError(f"must be at most {hi}")
        return number
    if kind == "enum":
        choices = list(spec.get("choices") or [])
        for choice in choices:
            if value == choice or str(value) == str(choice):
                return choice
        raise ValueError(f"must be one of {', '.join(map(str, choices))}")
    return str(value)


def build_params(ui: UiOp, values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters to send: shown values coerced, fixed ones added, anything the engine lacks dropped.

    Raises ValueError("Strength: must be at most 1") naming the field, for the panel to show.
    """
    params: dict[str, Any] = {}
    for name, spec in shown_fields(ui, schema):
        if name not in values:
            continue
        try:
            value = coerce(values[name], spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{PARAM_LABELS.get(name, name)}: {exc}") from None
        if value is None and not spec.get("nullable"):
            continue
        if name == "style_model" and not value:
            continue  # empty = use the reference image
        params[name] = value
    for name, value in ui.fixed.items():
        if name in schema:
            params[name] = value
    if "seed" in schema and params.get("seed") is None:
        params["seed"] = random.randrange(0, 2**31 - 1)  # chosen here, so the layer name can show it
    if ui.engine_op == "restore" and "task" in params and "upscale" not in str(params["task"]):
        params.pop("scale", None)  # scale only matters for upscaling
    return params


def layer_name(ui: UiOp, params: Mapping[str, Any], meta: Mapping[str, Any] | None = None,
               variant: int | None = None) -> str:
    """"Sfumato Inpaint (strength 0.8, seed 42)": what was done, readable in the layer stack."""
    meta = meta or {}
    bits = []
    if ui.key == "restore" and params.get("task"):
        task = str(params["task"])
        bits.append(task + (f" x{params['scale']}" if "upscale" in task and params.get("scale") else ""))
    if "strength" in params and ui.key != "remove":
        bits.append(f"strength {float(params['strength']):g}")
    if ui.key == "stylize" and params.get("style_model"):
        bits.append(f"style {params['style_model']}")
    if ui.key == "pattern" and params.get("tileable"):
        bits.append("tileable")
    seed = meta.get("seed", params.get("seed"))
    if isinstance(seed, list) and variant is not None and variant < len(seed):
        seed = seed[variant]
    if seed is not None and not isinstance(seed, list):
        bits.append(f"seed {seed}")
    name = f"Sfumato {ui.label}"
    if variant is not None:
        name += f" #{variant + 1}"
    return f"{name} ({', '.join(bits)})" if bits else name


def group_name(ui: UiOp, params: Mapping[str, Any], count: int) -> str:
    seed = f" (seed {params['seed']})" if params.get("seed") is not None else ""
    return f"Sfumato {ui.label}: {count} variants{seed}"


def output_names(outputs: Mapping[str, Any]) -> list[str]:
    """Output keys in variant order: image, image_1, image_2, ..."""
    names = [n for n in outputs if n == "image" or n.startswith("image_")]

    def order(name: str) -> int:
        tail = name[len("image_"):] if name != "image" else "0"
        return int(tail) if tail.isdigit() else 10**6

    return sorted(names, key=order)
