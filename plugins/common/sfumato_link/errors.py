"""Errors the thin client raises, and the human sentence an editor shows for each code.

Engine codes come from the engine's `error` replies; the client adds a few of its own for
failures that happen before the engine can answer (not running, relay did not start).
"""
from __future__ import annotations

from .settings import DEFAULT_ADDRESS

# client-side codes (the engine never sends these)
ENGINE_UNREACHABLE = "engine_unreachable"
RELAY_FAILED = "relay_failed"
ENGINE_START_FAILED = "engine_start_failed"  # the plug-in started a local engine and it did not come up
PROTOCOL_MISMATCH = "protocol_mismatch"
BAD_SELECTION = "bad_selection"
TIMEOUT = "timeout"  # a job ran past the caller's time limit (and was cancelled)
UNSUPPORTED = "unsupported"  # a pixel format or colour model the plug-in cannot send
KEY_REFUSED = "key_refused"  # the engine refused the connection's keys (or needs keys)

START_HINT = ("Start it with `sfumato serve` in a terminal (or `make serve` in the Sfumato source "
              "folder), then try again.")


class LinkError(Exception):
    """A failure with a code an editor can switch on and a message a person can read.

    `message` is the raw text (from the engine when it sent one); `str(err)` and
    `err.human()` give the sentence to show in a dialog.
    """

    def __init__(self, code: str, message: str, field: str | None = None, *,
                 address: str | None = None, op: str | None = None):
        self.code, self.message, self.field = code, message, field
        self.address, self.op = address, op
        super().__init__(self.human())

    def human(self) -> str:
        return describe(self.code, self.message, self.field, address=self.address, op=self.op)


def _param_name(field: str | None) -> str | None:
    if not field:
        return None
    return field.split(".", 1)[1] if field.startswith(("params.", "inputs.")) else field


def describe(code: str, message: str = "", field: str | None = None, *,
             address: str | None = None, op: str | None = None) -> str:
    """The sentence for an error code: what went wrong, then what to do about it."""
    message = (message or "").strip()
    where = f" at {address}" if address else ""
    if code == ENGINE_UNREACHABLE:
        return (f"The Sfumato engine is not answering{where}. {START_HINT} To use an engine elsewhere, "
                f"set SFUMATO_ENGINE (for example {DEFAULT_ADDRESS}) or the address in Engine Status.")
    if code == RELAY_FAILED:
        return (f"Could not start the Sfumato relay (the engine's own Python, used because this editor's "
                f"Python lacks pyzmq or msgpack): {message or 'no details'}. Set SFUMATO_PYTHON to the Python "
                f"that has Sfumato installed, or install pyzmq and msgpack for the editor's Python.")
    if code == KEY_REFUSED:
        return (f"The Sfumato engine{where} refused the connection: {message}. Set the engine key and "
                f"client key files in Engine Status (or SFUMATO_SERVER_KEY and SFUMATO_CLIENT_KEY).")
    if code == ENGINE_START_FAILED:
        return (f"Could not start the Sfumato engine{where}: {message or 'no details'}\nSet the engine's Python "
                f"(SFUMATO_PYTHON, or Engine Status) to the Python that has Sfumato installed.")
    if code == PROTOCOL_MISMATCH:
        return f"The engine speaks another protocol version ({message}). Update the plug-in and the engine together."
    if code == "model_missing":
        text = f"A model is missing: {message or 'the requested model is not installed'}"
        if "put" in message.lower():  # the engine already said where the files go
            return text if text.endswith(".") else text + "."
        return (text + ". Put the model folder into the engine's models/ folder (see docs/models.md), then "
                "restart the engine (or refresh its models).")
    if code == "bad_param":
        name = _param_name(field)
        return f"Invalid setting{f' “{name}”' if name else ''}: {message or 'value out of range'}."
    if code == "too_large":
        return (f"Too large for the engine: {message}. Select a smaller area, or raise the engine's limits "
                f"(see `sfumato serve --help`).")
    if code == "busy":
        return f"The engine's queue for this editor is full{': ' + message if message else ''}. Wait for the running jobs or cancel one."
    if code == "unknown_op":
        what = f"“{op}”" if op else "this operation"
        return (f"This engine does not offer {what}{': ' + message if message else ''}. Update the engine "
                f"and the plug-in so their versions match.")
    if code == TIMEOUT:
        return f"The engine took too long ({message}); the job was cancelled."
    if code == "cancelled":
        return "Cancelled."
    if code == "internal":
        return (f"The engine hit an internal error (a bug): {message}. The engine's log has the details; "
                f"the engine keeps running, so you can try again.")
    if code == BAD_SELECTION:
        return message or "The selection does not overlap the active layer."
    if code == UNSUPPORTED:
        return message or "This image format is not supported."
    if code in ("bad_message", "duplicate_id", "not_found"):
        return f"The engine rejected a message from the plug-in ({code}): {message}. Update the plug-in and engine together."
    return f"Engine error ({code}): {message}"
