"""How a Python call maps onto an operation: `client.inpaint(image, mask, steps=20)`.

Derived from the op's schema as `welcome` publishes it, so every op (and every op added
later) gets a call without client code of its own. Positional arguments are, in order: the
required inputs, the two parameters of a `size` rule (width, height), then the optional
inputs, each in declared order. A keyword names an input or a parameter; an input given as
None is left out.
"""
from __future__ import annotations

from typing import Any


def positional(schema: dict) -> list[tuple[str, str]]:
    """("inputs" | "params", name) for each positional argument of the op's call."""
    inputs = schema.get("inputs", {})
    order = [("inputs", n) for n, s in inputs.items() if s.get("required")]
    size = next((r for r in schema.get("rules", []) if r.get("kind") == "size"), None)
    if size is not None:
        order += [("params", size["width"]), ("params", size["height"])]
    return order + [("inputs", n) for n, s in inputs.items() if not s.get("required")]


def bind(op: str, schema: dict, args: tuple, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, params) of a call; TypeError for too many or repeated arguments, as Python says
    for a plain function. Unknown keywords go to params, where the engine names them."""
    order = positional(schema)
    if len(args) > len(order):
        names = ", ".join(name for _, name in order) or "none"
        raise TypeError(f"{op}() takes {len(order)} positional arguments ({names}) but {len(args)} were given")
    given: dict[str, dict[str, Any]] = {"inputs": {}, "params": {}}
    for (section, name), value in zip(order, args):
        given[section][name] = value
    for name, value in kwargs.items():
        section = "inputs" if name in schema.get("inputs", {}) else "params"
        if name in given[section]:
            raise TypeError(f"{op}() got multiple values for {name!r}")
        given[section][name] = value
    return {k: v for k, v in given["inputs"].items() if v is not None}, given["params"]
