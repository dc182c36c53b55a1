"""Krita actions for every operation (Tools > Scripts, bindable to shortcuts) and the docker's show action.

An action runs the operation with the docker's current values when a Sfumato docker exists,
else with the engine's defaults; problems appear in the docker or as a canvas message.
"""
from __future__ import annotations

import logging
from typing import Any

from krita import Extension

from . import runtime
from .bootstrap import link
from .ops import OPS, action_id

log = logging.getLogger("sfumato.krita")

MENU = "tools/scripts"


class SfumatoExtension(Extension):
    """Registers `sfumato_<op>` actions and `sfumato_reconnect`."""

    def __init__(self, parent: Any):
        super().__init__(parent)
        self.actions: dict[str, Any] = {}

    def setup(self) -> None:
        # the controller starts with the first docker or action; it must be closed before Python goes away
        notifier = self.parent().notifier() if hasattr(self.parent(), "notifier") else None
        if notifier is not None:
            notifier.applicationClosing.connect(runtime.shutdown)

    def createActions(self, window: Any) -> None:  # noqa: N802 (Krita's name)
        for op in OPS:
            action = window.createAction(action_id(op), f"Sfumato: {op.label}", MENU)
            action.setToolTip(op.tip)
            action.triggered.connect(lambda _checked=False, key=op.key: self.trigger(key))
            self.actions[op.key] = action
        action = window.createAction("sfumato_reconnect", "Sfumato: Reconnect to engine", MENU)
        action.triggered.connect(lambda _checked=False: runtime.reconnect())
        self.actions["reconnect"] = action

    def trigger(self, key: str) -> None:
        """What a shortcut does: run `key` now (or say why not)."""
        try:
            runtime.run_op(key)
        except link.LinkError as exc:
            runtime.notify(str(exc))
            runtime.controller().announce(str(exc))
        except Exception as exc:
            log.exception("sfumato action %s failed", key)
            runtime.notify(f"Sfumato: unexpected error: {exc}")
