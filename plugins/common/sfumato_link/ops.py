"""Checks against the connected engine's `welcome` just before a job is sent.

The editors declare their dialogs from the shipped snapshot (schema.py), so a parameter
can be missing from an older or newer engine; `fit_params` keeps the ones the engine's
`welcome` declares and says which it dropped, instead of letting the engine reject the job.
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import LinkError


def require_op(welcome: Mapping[str, Any] | None, op: str) -> dict[str, Any]:
    """The op's schema, or LinkError(unknown_op) naming what the engine does offer."""
    ops = (welcome or {}).get("ops") or {}
    schema = ops.get(op)
    if not isinstance(schema, dict):
        offered = ", ".join(sorted(k for k, v in ops.items() if not (isinstance(v, dict) and v.get("test_only"))))
        raise LinkError("unknown_op", f"this engine offers: {offered or 'nothing yet'}", op=op)
    return schema


def fit_params(welcome: Mapping[str, Any] | None, op: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep params the engine's schema for `op` declares; drop the rest (returned as a list).

    Without a schema (an engine that has not said), everything is kept.
    """
    schema = ((welcome or {}).get("ops") or {}).get(op)
    if not isinstance(schema, dict) or not isinstance(schema.get("params"), dict):
        return dict(params), []
    known = schema["params"]
    kept = {k: v for k, v in params.items() if k in known}
    return kept, sorted(k for k in params if k not in known)
