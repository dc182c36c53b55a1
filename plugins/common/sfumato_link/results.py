"""What a finished job becomes in an editor: which outputs, in which order, under which names.

Seed policy (both editors): the plug-in sends the artist's seed, or null for "random"; it
never picks one itself. The engine draws a random seed when given null and returns the seed
it used in `meta["seed"]`; layer names show that one, so a result can always be redone by
typing the number from its name. An engine that reports no seed leaves the name without one
(unless the artist chose it).

Output order: `image`, `image_1`, `image_2`, ... are variants #1, #2, #3; both editors stack
them with #1 on top, directly above the source layer.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .actions import Action
from .wire import Array


def used_seed(params: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> int | None:
    """The seed a result was made with: what the engine reports, else what was sent."""
    seed = (meta or {}).get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    sent = params.get("seed")
    return sent if isinstance(sent, int) and not isinstance(sent, bool) else None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _describe(name: str, params: Mapping[str, Any]) -> str:
    """One parameter as a short phrase for a layer name ("" to leave it out)."""
    value = params.get(name)
    if value is None or value == "" or value is False:
        return ""
    if value is True:
        return name.replace("_", " ")
    if name == "task":
        scale = params.get("scale")
        return f"{value} x{scale}" if "upscale" in str(value) and scale else str(value)
    if name == "style_model":
        return f"style {value}"
    return f"{name.replace('_', ' ')} {_number(value)}"


def layer_name(action: Action, params: Mapping[str, Any], meta: Mapping[str, Any] | None = None,
               variant: int | None = None) -> str:
    """'Sfumato Inpaint (strength 0.8, seed 42)', or 'Sfumato Inpaint #2 (...)' for a variant."""
    bits = [text for text in (_describe(name, params) for name in action.name_keys) if text]
    seed = used_seed(params, meta)
    if seed is not None:
        bits.append(f"seed {seed}")
    name = f"Sfumato {action.label}"
    if variant is not None and variant < len(action.output_labels):  # e.g. Pattern repeat's tile and preview
        name += f" {action.output_labels[variant]}"
    elif variant is not None:
        name += f" #{variant + 1}"
    return f"{name} ({', '.join(bits)})" if bits else name


def group_name(action: Action, params: Mapping[str, Any], meta: Mapping[str, Any] | None, count: int) -> str:
    """The name of a group holding `count` variants (or an action's labelled outputs: its layer name)."""
    if action.output_labels:
        return layer_name(action, params, meta)
    seed = used_seed(params, meta)
    return f"Sfumato {action.label}: {count} variants" + (f" (seed {seed})" if seed is not None else "")


def result_summary(meta: Mapping[str, Any] | None) -> str | None:
    """The engine's one-line account of what a job found and did (restore: "found: 3
    scratches, 40 dust specks; applied: repair"), worded by the engine so every client
    shows the same text; None when the result carries none."""
    text = (meta or {}).get("summary")
    return text if isinstance(text, str) and text else None


def ordered_outputs(outputs: Mapping[str, Array], base: str = "image") -> list[tuple[str, Array]]:
    """[('image', a), ('image_1', b), ...] in variant order; other outputs are left out."""
    found = []
    for name, value in outputs.items():
        match = re.fullmatch(re.escape(base) + r"(?:_(\d+))?", name)
        if match:
            found.append((int(match.group(1) or 0), name, value))
    return [(name, value) for _, name, value in sorted(found, key=lambda item: item[0])]
