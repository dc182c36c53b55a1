"""The artist-facing operations both editors offer, and how a form's values become `params`.

Eight actions map onto the engine's six ops: "Remove" is `inpaint` at full strength with
a wider context and `remove` set (the mask grows, the object is never copied), optionally
with a source mask; "Extend canvas" is `inpaint` over canvas added on chosen sides;
"Pattern repeat" is `pattern` on a motif, "Recolor" is `recolor`. Which engine parameters
each action shows is listed here once; their types, ranges and defaults come from the schema
(the snapshot, or the connected engine's `welcome`), never from the editors. GIMP turns the fields into procedure arguments, Krita
into its panel's form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .extend import SIDE_LABELS, SIDES, UNITS
from .geometry import Box, default_context
from .schema import choices, coerce

# The plug-in's own fields (never sent to the engine), declared like engine parameters so both
# editors draw them with the same code.
EXTEND_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "sides": {"type": "enum", "choices": list(SIDES), "default": "right", "doc": "which side(s) of the canvas grow"},
    "amount": {"type": "int", "min": 1, "max": 100000, "default": 25,
               "doc": "how much canvas each chosen side gets, in the unit below"},
    "unit": {"type": "enum", "choices": list(UNITS), "default": "percent",
             "doc": "percent of the image's width (left, right) or height (top, bottom), or pixels"},
}


# Pattern repeat's own fields: what each editor does with a finished tile (`hosts`: which editor shows it).
TILE_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "save_pattern": {"type": "bool", "default": False, "hosts": ("gimp",),
                     "doc": "also save the tile as a GIMP pattern (.pat) in your patterns folder"},
    "wrap_around": {"type": "bool", "default": True, "hosts": ("krita",),
                    "doc": "open the tile as a new image in wrap-around mode (the canvas repeats in every direction)"},
}


@dataclass(frozen=True)
class Action:
    """One entry of an editor's menu or operation picker."""

    key: str
    label: str
    engine_op: str
    fields: tuple[str, ...]  # engine parameters shown to the artist, in order
    fixed: Mapping[str, Any] = field(default_factory=dict)  # always sent, never shown
    defaults: Mapping[str, Any] = field(default_factory=dict)  # the action's own starting values
    selection: str = "optional"  # "required": needs a selection (or transparent pixels); "optional"; "size";
    # "extend": works on the whole canvas, which it enlarges; "motif": the selection's bounding box (no
    # context) with unselected pixels made transparent, or the whole layer, and results of their own size
    # placed at the box's corner; "crop": the selection's bounding box (no context, no mask sent) or the
    # whole layer, the results cleared outside the selection
    context: float = 0.25  # surroundings sent around the selection, as a fraction of its larger side
    context_max: int = 256  # ... and at most this many pixels
    style_input: bool = False  # takes a reference image (stylize)
    name_keys: tuple[str, ...] = ()  # parameters shown in a result's layer name (the seed always is)
    own: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # the plug-in's own fields, shown first
    source_input: bool = False  # takes an optional source mask (where fills may copy from)
    tip: str = ""
    extra_inputs: tuple[str, ...] = ()  # engine inputs taken from another layer or a file (pattern's ground)
    output_labels: tuple[str, ...] = ()  # what outputs image, image_1, ... are, when they are not variants


# the `pattern` op (textile repeats) and `recolor` (colourways)
TILE_ACTIONS: tuple[Action, ...] = (
    Action("repeat", "Pattern repeat", "pattern", ("layout", "spacing", "scale", "rotation", "jitter", "background",
                                                 "preview", "seed"),
           defaults={"layout": "half-drop"}, selection="motif", name_keys=("layout",), own=TILE_FIELDS,
           extra_inputs=("ground",), output_labels=("tile", "preview"),
           tip="Put the selection (or the layer, with its transparency) into a textile repeat, or make it "
               "seamless: the result is one repeat tile (and an N x N preview) as new layers."),
    Action("recolor", "Recolor", "recolor", ("palette", "colors", "variants", "seed"), selection="crop",
           name_keys=("palette",), extra_inputs=("reference",),
           tip="Colourways: recolour the selection or layer to a palette (hex colours, or colours taken from a "
               "reference), keeping shading and line work."),
)

ACTIONS: tuple[Action, ...] = (
    Action("inpaint", "Inpaint", "inpaint", ("strength", "steps", "seed", "variants", "method", "model"),
           selection="required", name_keys=("strength",),
           tip="Fill the selection so that it matches its surroundings."),
    Action("remove", "Remove", "inpaint", ("steps", "seed", "variants"), fixed={"strength": 1.0, "remove": True},
           selection="required", context=0.5, context_max=384, source_input=True,
           tip="Remove the selected object: the selection grows a little (fringe, shadow edge) and is filled "
               "from its surroundings, never from the object. A source mask limits where texture is copied from."),
    Action("extend", "Extend canvas", "inpaint", ("steps", "seed", "variants", "method"),
           fixed={"strength": 1.0, "feather": 0.0}, selection="extend", context=1.0, context_max=1024,
           own=EXTEND_FIELDS,
           tip="Enlarge the canvas on the chosen sides and fill the new area so that it continues the picture."),
    Action("restore", "Restore", "restore", ("task", "scale", "sigma", "quality", "steps", "seed", "model"),
           name_keys=("task",),
           tip="Denoise, remove JPEG artefacts, upscale, deblur or repair the selection or layer."),
    Action("stylize", "Stylize", "stylize", ("style_model", "strength", "structure", "stroke_scale", "guidance",
                                             "palette", "steps", "seed", "model"),
           style_input=True, name_keys=("style_model", "strength"),
           tip="Re-render the selection or layer in the style of a reference image or model."),
    Action("pattern", "Generate pattern", "generate", ("tileable", "steps", "seed", "variants", "model"),
           defaults={"tileable": True}, selection="size", name_keys=("tileable",),
           tip="Generate a new (seamless) pattern the size of the selection or canvas."),
    *TILE_ACTIONS,
)
BY_KEY = {action.key: action for action in ACTIONS}

PARAM_LABELS = {"strength": "Strength", "steps": "Steps", "seed": "Seed", "variants": "Variants",
                "method": "Method", "task": "Task", "scale": "Scale", "style_model": "Style model",
                "structure": "Structure", "tileable": "Tileable", "model": "Model", "sigma": "Noise level",
                "quality": "JPEG quality", "guidance": "Style force", "palette": "Palette",
                "width": "Width", "height": "Height", "sides": "Sides", "amount": "Amount", "unit": "Unit",
                "save_pattern": "Save as GIMP pattern", "wrap_around": "Wrap-around view", "colors": "Colours",
                "ground": "Ground", "reference": "Palette from"}

# What a free-text parameter is usually set to (offered in a list); an enum's own choices win.
SUGGESTIONS = {"task": ("auto", "denoise", "jpeg", "upscale", "deblur", "repair", "denoise,jpeg", "deblur,denoise")}
CHOICE_LABELS = {
    "task": {"auto": "Auto (estimate the damage)", "denoise": "Denoise", "jpeg": "Remove JPEG artefacts",
             "upscale": "Upscale", "deblur": "Deblur", "repair": "Repair scratches and dust",
             "denoise,jpeg": "Denoise and remove JPEG artefacts", "deblur,denoise": "Denoise and deblur"},
    "method": {"diffusion": "Diffusion", "patch": "Patch (fast, copies nearby texture)"},
    "sides": SIDE_LABELS,
    "unit": {"percent": "%", "px": "pixels"},
}


def label(name: str) -> str:
    return PARAM_LABELS.get(name, name.replace("_", " ").capitalize())


def options(name: str, spec: Mapping[str, Any]) -> list[tuple[Any, str]]:
    """(value, label) pairs to offer for a parameter: an enum's choices, else the usual values, else []."""
    values = choices(spec) or list(SUGGESTIONS.get(name, ()))
    labels = CHOICE_LABELS.get(name, {})
    return [(value, labels.get(str(value), str(value))) for value in values]


def shown_fields(action: Action, schema: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, spec) of the parameters to show: the action's fields the schema declares, not fixed ones,
    with the action's own defaults in place of the engine's."""
    shown = []
    for name in action.fields:
        if name in schema and name not in action.fixed:
            spec = dict(schema[name])
            if name in action.defaults:
                spec["default"] = action.defaults[name]
            shown.append((name, spec))
    return shown


def own_fields(action: Action, host: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(name, spec) of the plug-in's own fields of `action` (e.g. Extend canvas's sides and amount);
    with `host` ("gimp", "krita") only those that editor shows."""
    return [(name, dict(spec)) for name, spec in action.own.items()
            if host is None or host in spec.get("hosts", (host,))]


def own_values(action: Action, values: Mapping[str, Any], host: str | None = None) -> dict[str, Any]:
    """The own fields' values, checked like parameters (defaults for missing ones).

    Raises ValueError("Amount: must be at least 1") naming the field, for the editor to show.
    """
    out: dict[str, Any] = {}
    for name, spec in own_fields(action, host):
        try:
            out[name] = coerce(values.get(name), spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label(name)}: {exc}") from None
    return out


def build_params(action: Action, values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters to send: shown values coerced, fixed ones added, anything the schema lacks dropped.

    Raises ValueError("Strength: must be at most 1") naming the field, for the editor to show.
    """
    params: dict[str, Any] = {}
    for name, spec in shown_fields(action, schema):
        if name not in values:
            continue
        try:
            value = coerce(values[name], spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{label(name)}: {exc}") from None
        if value is None and not spec.get("nullable"):
            continue
        params[name] = value
    for name, value in action.fixed.items():
        if name in schema:
            params[name] = value
    if action.engine_op == "restore" and "task" in params and "upscale" not in str(params["task"]):
        params.pop("scale", None)  # the factor only matters for upscaling
    return params


def context_pixels(action: Action, selection: Box) -> int:
    """Pixels of surroundings to send around `selection` for `action`."""
    return default_context(selection, fraction=action.context, maximum=action.context_max)
