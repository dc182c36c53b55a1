"""Which installed models a form offers for one operation's model parameter, from the engine's `welcome`.

Both editors draw their model pickers from `model_choices`, so GIMP and Krita offer the same
list: the diffusion models the parameter accepts (its schema's `model_kinds`), then the zoo
models (other projects' checkpoints) whose `serves` names the operation. Where the form knows
restore's task (and upscale's factor) only the zoo models that can do it are offered; without
it every zoo model serving the operation is, labelled with what it does. A model the engine
could not read (`error`) is never offered. `style_model` offers style models only.
"""
from __future__ import annotations

from typing import Any, Mapping

from .schema import op_params

ZOO = "zoo"  # welcome.models[].kind of another project's checkpoint
DIFFUSION_ORDER = ("base", "style")  # diffusion models first, base before style
NULL_LABELS = {"style_model": "(none: use the reference image)"}  # a nullable picker's empty entry
AUTO_TASK = "auto"  # restore's task that lets a zoo model do its own task


def installed(welcome: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """welcome.models entries that can be used: named, and readable (no `error`)."""
    entries = (welcome or {}).get("models") or []
    return [dict(m) for m in entries if isinstance(m, Mapping) and m.get("name") and not m.get("error")]


def split_tasks(task: Any) -> list[str]:
    """'denoise, JPEG' -> ['denoise', 'jpeg'] (restore's comma list); None or '' -> []."""
    return [t.strip().lower() for t in str(task or "").split(",") if t.strip()]


def zoo_tasks(entry: Mapping[str, Any], op: str) -> list[str]:
    """The tasks a zoo model does for `op` ([] when it does not serve `op`)."""
    serves = entry.get("serves") or {}
    tasks = serves.get(op) if isinstance(serves, Mapping) else None
    return [str(t) for t in tasks] if isinstance(tasks, (list, tuple)) else []


def can_do(entry: Mapping[str, Any], op: str, task: Any = None, scale: Any = None) -> bool:
    """Whether a zoo model serves `op` and, when given, every task of `task` (with upscale's `scale`).

    Mirrors the engine's check (engine/tasks/restore_zoo.py): "auto" means the model's own tasks;
    an upscaler only upscales by its own factor."""
    if op not in ((entry.get("serves") or {}) if isinstance(entry.get("serves"), Mapping) else {}):
        return False
    own = zoo_tasks(entry, op)
    wanted = split_tasks(task)
    if not wanted or wanted == [AUTO_TASK]:
        return True
    if any(t not in own for t in wanted):
        return False
    if "upscale" in wanted and scale not in (None, "") and str(scale) != str(entry.get("scale")):
        return False
    return True


def zoo_label(entry: Mapping[str, Any], op: str) -> str:
    """'realesrgan-x4plus (upscale x4, ESRGAN)': the name, what it does for `op`, its architecture."""
    does = [f"upscale x{entry.get('scale')}" if t == "upscale" else t for t in zoo_tasks(entry, op)]
    parts = does or [str(entry.get("purpose") or op)]
    if entry.get("architecture"):
        parts.append(str(entry["architecture"]))
    return f"{entry['name']} ({', '.join(parts)})"


def model_choices(welcome: Mapping[str, Any] | None, op: str, task: Any = None, scale: Any = None,
                  param: str = "model") -> list[tuple[str, str]]:
    """(value, label) pairs for `op`'s model parameter `param`, in the order to show them.

    `task`/`scale`: restore's current task (a comma list, "auto") and upscale factor, when the
    form knows them. A nullable parameter starts with ("", label of the empty choice). Without
    an engine (`welcome` None) the list holds only the schema's default.
    """
    spec = (op_params(op, welcome) or {}).get(param) or {}
    out: list[tuple[str, str]] = []
    if spec.get("nullable"):
        out.append(("", NULL_LABELS.get(param, "(none)")))
    if welcome is None:
        if spec.get("default"):
            out.append((str(spec["default"]), str(spec["default"])))
        return out
    kinds = spec.get("model_kinds")
    accepted = set(kinds) if isinstance(kinds, (list, tuple)) else set(DIFFUSION_ORDER)
    if param == "style_model":
        accepted &= {"style"}
    models = installed(welcome)
    for kind in DIFFUSION_ORDER:
        if kind in accepted:
            out += [(m["name"], m["name"] if kind == "base" else f"{m['name']} (style)")
                    for m in models if m.get("kind") == kind]
    if ZOO in accepted:
        out += [(m["name"], zoo_label(m, op)) for m in models
                if m.get("kind") == ZOO and can_do(m, op, task, scale)]
    default = spec.get("default")
    if default and not any(value == default for value, _ in out) and not models:
        out.append((str(default), str(default)))  # an engine that listed no models: still its default
    return out


def pick(choices: list[tuple[str, str]], current: Any, default: Any = None) -> str:
    """The value to select after the list changed: `current` if still offered, else `default`, else the first."""
    values = [value for value, _ in choices]
    for wanted in (current, default):
        if wanted is not None and str(wanted) in values:
            return str(wanted)
    return values[0] if values else ""
