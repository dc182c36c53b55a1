"""GIMP procedure arguments derived from the engine's schema, and their values read back as params.

Pure Python (no GIMP import), so tests check the derivation without GIMP. A procedure
argument per shown field of the action (sfumato_link.actions), with the type, range and
default the schema declares. GIMP arguments cannot be null: a nullable number gets one
value below its range that means null ("-1 = random" for a seed, "0 = auto" for restore's
steps), the same convention as Krita's spin boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import sfumato_link as link

INT_MAX = 2**31 - 1  # GIMP int arguments are gint
FLOAT_LIMIT = 1e6  # a range for a float the schema leaves open
HOST = "gimp"  # which of the actions' own fields GIMP shows (sfumato_link.own_fields)


@dataclass(frozen=True)
class Argument:
    """One procedure argument: `kind` picks Gimp.Procedure.add_<kind>_argument."""

    kind: str  # "int" | "double" | "boolean" | "string" | "choice"
    name: str  # the PDB name: the engine parameter with dashes
    nick: str  # the dialog label, with a mnemonic
    blurb: str
    default: Any
    min: float | None = None
    max: float | None = None
    options: tuple[tuple[str, str, Any], ...] = ()  # choice: (nick, label, engine value)
    param: str = ""  # the engine parameter it sets
    null: Any = None  # the argument value that means null, for nullable numbers

    def to_param(self, value: Any) -> Any:
        """The argument's value as the value for the engine parameter (None = null)."""
        if self.kind == "choice":
            return next((engine for nick, _, engine in self.options if nick == value), value)
        if self.null is not None and value is not None and value <= self.null:
            return None
        if self.kind == "string" and value == "":
            return None
        return value


def _numeric_choices(spec: Mapping[str, Any]) -> list[Any]:
    allowed = link.schema.choices(spec)
    numbers = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in allowed)
    return allowed if allowed and numbers else []


def argument(name: str, spec: Mapping[str, Any]) -> Argument:
    """The argument for engine parameter `name` with schema `spec`."""
    pdb, nick = name.replace("_", "-"), "_" + link.label(name)
    blurb = str(spec.get("doc") or link.label(name))
    kind, default = spec.get("type"), spec.get("default")
    numbers = _numeric_choices(spec)  # e.g. an upscale factor {2, 4}: a number argument, checked on use
    options = [] if numbers else link.options(name, spec)
    if options:
        nicks = tuple((str(value), text, value) for value, text in options)
        start = str(default) if any(str(default) == n for n, _, _ in nicks) else nicks[0][0]
        return Argument("choice", pdb, nick, blurb, start, options=nicks, param=name)
    if kind == "bool":
        return Argument("boolean", pdb, nick, blurb, bool(default), param=name)
    if kind in ("int", "float") or numbers:
        whole = all(isinstance(n, int) for n in numbers) if numbers else kind == "int"
        lo = min(numbers) if numbers else spec.get("min")
        hi = max(numbers) if numbers else spec.get("max")
        if numbers:
            blurb += f" ({', '.join(map(str, numbers))})"
        limit = INT_MAX if whole else FLOAT_LIMIT
        lo = -limit if lo is None else lo
        hi = limit if hi is None else min(hi, limit)
        null = None
        if spec.get("nullable"):
            null = lo - 1
            blurb += f"; {null:g} = {'random' if name == 'seed' else 'auto'}"
            lo = null
        start = null if default is None else default
        if whole:
            return Argument("int", pdb, nick, blurb, int(start), int(lo), int(hi), param=name, null=null)
        return Argument("double", pdb, nick, blurb, float(start), float(lo), float(hi), param=name,
                        null=None if null is None else float(null))
    return Argument("string", pdb, nick, blurb, "" if default is None else str(default), param=name)


def size_argument(name: str, spec: Mapping[str, Any]) -> Argument:
    """`width`/`height` of a generated image: up to the engine's maximum, 0 = the selection's or image's."""
    hi = int(min(spec.get("max") or INT_MAX, INT_MAX))
    return Argument("int", name, "_" + link.label(name), f"Pixels, at most {hi}; 0 = the selection's or image's",
                    0, 0, hi, param=name)


def for_action(action: link.Action, schema: Mapping[str, Any] | None) -> list[Argument]:
    """The plug-in's own arguments of `action` (Extend canvas's sides and amount), then its
    engine-parameter arguments, in the action's field order."""
    schema = schema or {}
    args = [argument(name, spec) for name, spec in link.own_fields(action, HOST)]
    args += [argument(name, spec) for name, spec in link.shown_fields(action, schema)]
    if action.selection == "size":
        args += [size_argument(name, schema[name]) for name in ("width", "height") if name in schema]
    return args


def read_values(args: list[Argument], read: Callable[[str], Any]) -> dict[str, Any]:
    """{engine parameter: value} from a procedure's config (`read` = config.get_property)."""
    return {arg.param: arg.to_param(read(arg.name)) for arg in args}
