"""The docker's operations: the actions both plug-ins share (sfumato_link.actions), as Krita actions.

Which parameters an operation shows, how they become `params` and how results are named
live in the shared thin client; their types, ranges and defaults come from the schema:
the shipped snapshot until an engine answers, then that engine's `welcome`. A parameter
the connected engine does not declare is never sent.
"""
from __future__ import annotations

from typing import Any, Mapping

from .bootstrap import link

Action = link.Action
OPS: tuple[Action, ...] = link.ACTIONS
BY_KEY: dict[str, Action] = link.BY_KEY


def action_id(action: Action) -> str:
    """The Krita action name (Tools > Scripts, bindable to a shortcut)."""
    return f"sfumato_{action.key}"


def engine_schema(action: Action, welcome: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """The parameter schema to draw and check against: the engine's once it has said `welcome`,
    the shipped snapshot before; None when the connected engine lacks the op."""
    return link.schema.op_params(action.engine_op, welcome)
