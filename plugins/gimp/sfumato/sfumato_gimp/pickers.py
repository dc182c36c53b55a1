"""Model pickers in the procedure dialogs, filled from the engine's `welcome` when a dialog opens.

GIMP fixes a procedure's arguments when the plug-in registers (before any engine runs), so the
model arguments stay strings: scripts and batch calls name any installed model. In an
interactive dialog the string's entry is replaced by a combo box bound to the same argument,
holding what sfumato_link.model_choices offers for the operation (the engine's models that
can do it; restore's list follows its task and scale). When no engine can be reached the
entry stays, so the dialog still opens.
"""
from __future__ import annotations

from typing import Any, Callable

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GObject, Gtk  # noqa: E402

import sfumato_link as link  # noqa: E402

from . import connection  # noqa: E402

FOLLOW = ("task", "scale")  # arguments whose change refills restore's model list


def model_arguments(action: link.Action, schema: dict[str, Any] | None) -> list[str]:
    """The engine parameters of `action` that name a model (the pickers to draw)."""
    return [name for name, spec in link.shown_fields(action, schema or {}) if spec.get("type") == "model"]


def engine_welcome(label: str) -> dict[str, Any] | None:
    """The engine's welcome (starting a local engine if needed, as a job would), or None."""
    Gimp.progress_init(f"Sfumato {label}: reading the engine's models")
    try:
        session = connection.open_session(connection.current_settings(), label)
        try:
            return session.hello()
        finally:
            session.close()
    except link.LinkError:
        return None
    finally:
        Gimp.progress_end()


def attach(dialog: Any, action: link.Action, config: Any) -> list[Any]:
    """Swap each model argument's entry in the filled `dialog` for a picker; returns the combos
    (empty when the engine could not be reached or the action names no model)."""
    names = model_arguments(action, link.schema.op_params(action.engine_op))
    if not names:
        return []
    welcome = engine_welcome(action.label)
    if welcome is None:
        return []
    combos = []
    for name in names:
        combo = _picker(dialog, action, config, welcome, name)
        if combo is not None:
            combos.append(combo)
    return combos


def _read(config: Any, prop: str) -> Any:
    try:
        return config.get_property(prop)
    except TypeError:  # the procedure has no such argument
        return None


def _picker(dialog: Any, action: link.Action, config: Any, welcome: dict[str, Any], name: str) -> Any:
    prop = name.replace("_", "-")
    entry = dialog.get_widget(prop, GObject.TYPE_NONE)  # the entry fill() made for the string argument
    parent = entry.get_parent() if entry is not None else None
    if parent is None:
        return None
    spec = (link.schema.op_params(action.engine_op, welcome) or {}).get(name, {})
    store = Gtk.ListStore(str, str)
    combo = GimpUi.prop_string_combo_box_new(config, prop, store, 0, 1)
    refill = _refiller(store, combo, config, prop, lambda: link.model_choices(
        welcome, action.engine_op, _read(config, "task"), _read(config, "scale"), param=name), spec.get("default"))
    refill()
    for follow in FOLLOW:
        if name == "model" and _read(config, follow) is not None:
            config.connect(f"notify::{follow}", lambda *_: refill())
    combo.set_tooltip_text(str(spec.get("doc") or ""))
    combo.set_hexpand(True)
    inner = entry.get_entry() if hasattr(entry, "get_entry") else None
    if inner is not None and isinstance(inner.get_parent(), Gtk.Grid):
        # in the entry's own place beside its label, which stays aligned with the other labels
        inner.set_no_show_all(True)
        inner.hide()
        inner.get_parent().attach_next_to(combo, inner, Gtk.PositionType.RIGHT, 1, 1)
        if hasattr(entry, "get_label"):
            entry.get_label().set_mnemonic_widget(combo)
        combo.show()
        return combo
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)  # another widget: a row of our own
    row.pack_start(Gtk.Label(label=link.label(name), xalign=0.0), False, False, 0)
    row.pack_start(combo, True, True, 0)
    position = parent.child_get_property(entry, "position")
    entry.set_no_show_all(True)
    entry.hide()
    parent.pack_start(row, False, False, 0)
    parent.reorder_child(row, position + 1)
    row.show_all()
    return combo


def _refiller(store: Any, combo: Any, config: Any, prop: str, choices: Callable[[], list[tuple[str, str]]],
              default: Any) -> Callable[[], None]:
    """Refill `store` with the current choices, keeping the argument's model while it is offered."""
    def refill() -> None:
        options = choices()
        if [tuple(row) for row in store] == [tuple(o) for o in options]:
            return
        current = config.get_property(prop)
        store.clear()
        for value, text in options:
            store.append([value, text])
        chosen = link.models.pick(options, current, default)
        config.set_property(prop, chosen)
        try:
            GimpUi.StringComboBox.set_active(combo, chosen)
        except TypeError:
            Gtk.ComboBox.set_active(combo, next((i for i, (v, _) in enumerate(options) if v == chosen), -1))
    return refill
