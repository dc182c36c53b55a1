"""The engine's error codes: a small fixed set every client can switch on."""
from __future__ import annotations

BAD_MESSAGE = "bad_message"  # not decodable: msgpack, frames, header fields, buffer sizes
BAD_PARAM = "bad_param"  # a parameter or input with a wrong type, range or shape
TOO_LARGE = "too_large"  # over a limit: pixels, message size, steps, variants
BUSY = "busy"  # the per-client queue limit is reached
UNKNOWN_OP = "unknown_op"  # no such operation
MODEL_MISSING = "model_missing"  # the requested model is not installed
DUPLICATE_ID = "duplicate_id"  # the request id is already in use on this connection
NOT_FOUND = "not_found"  # cancel of an id the engine does not know
CANCELLED = "cancelled"  # the job was cancelled
INTERNAL = "internal"  # a bug: logged with a traceback, the engine keeps serving

CODES = (BAD_MESSAGE, BAD_PARAM, TOO_LARGE, BUSY, UNKNOWN_OP, MODEL_MISSING, DUPLICATE_ID, NOT_FOUND,
         CANCELLED, INTERNAL)


class EngineError(Exception):
    """An error that becomes an `error` reply: code, human message, offending field."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field}


class JobCancelled(Exception):
    """Raised inside a running job (from a progress callback) to stop it between steps."""
