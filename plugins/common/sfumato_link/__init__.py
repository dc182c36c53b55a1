"""sfumato_link: the thin client the GIMP and Krita plug-ins share.

No numpy, no engine imports, Python 3.10+. pyzmq and msgpack are used when they import;
otherwise messages go through a relay (the engine's own Python, `python -m engine.relay`)
and msgpack falls back to the bundled pure-Python `minipack`. Everything here is plain
bytes in, bytes out, so it runs inside any editor's Python.

Stable API (other plug-ins build on it; change only additively):

Connecting
    settings = load_settings(stored=None)        # defaults < install file < stored < env vars
        Settings(address="tcp://127.0.0.1:5555", python="", engine_root="", transport="auto",
                 autostart=True, keep_engine=False, timeout=5.0); env: SFUMATO_ENGINE, SFUMATO_PYTHON, SFUMATO_ENGINE_ROOT,
                 SFUMATO_TRANSPORT (auto|zmq|relay). settings.to_json() / Settings.from_json().
    session = Session.open(settings, client="gimp", guard=False)   # transport only; no I/O yet
    welcome = session.hello()        # raises LinkError("engine_unreachable") if nobody answers
        welcome["ops"][name]["params"][pname] -> {"type", "default", "min", "max", "choices", ...}
    session.transport.kind           # "zmq" or "relay"

Starting the local engine (autostart.py)
    autostart.should_start(settings)  # auto-start on, local address, nothing listening there
    start = autostart.EngineStart(settings, host_pid)   # PYTHON -m engine.cli serve --stop-with PID
    start.poll() -> "starting" | "ready" | "failed"; start.status, start.elapsed, start.error (LinkError
        engine_start_failed: the engine's output tail and the command to run by hand); start.wait(on_wait)
    start.stop()                     # an editor closing without settings.keep_engine

Jobs (non-blocking; poll from a timer or a loop)
    job = session.submit(op, inputs={"image": Array, "mask": Array}, params={...})
    events = session.poll(timeout=0.0)   # -> [Event(type, id, data, job)]; updates Job objects
        job.state: sent | queued | running | done | error | cancelled;  job.finished
        job.step, job.total, job.fraction, job.stage, job.preview (Array | None), job.position
        job.outputs {"image": Array, "image_1": ...}, job.meta, job.error (LinkError)
    job.cancel()                       # sends `cancel`; the job ends `cancelled` (or done if it won)
    job.wait(timeout=None, on_event=fn)  # blocking helper; fn(event) returning True cancels
    session.run(op, inputs, params)  # submit + wait -> finished Job
    session.status(), session.models(refresh=False), session.ping(), session.close()
    session.add_listener(fn)         # fn(event) for every polled event

Arrays (wire.Array): Array((h, w, c), "u8"|"u16"|"f32", bytes_like); .tobytes(), .width, ...

Selections and pixels
    Box(x, y, w, h), Box.from_corners(x1, y1, x2, y2), .intersect, .pad, .relative_to
    crop_box(selection_box | None, layer_box, context=None) -> Box   # bbox + context, clamped
    default_context(selection_box)
    mask_to_u8(bytes, dtype), mask_bbox(mask, w, h), mask_is_empty, mask_is_full, full_mask
    clear_outside_mask(data, mask, dtype, channels=4)   # unselected pixels -> transparent
    clear_unchanged_outside(data, source, mask, dtype, channels=4)   # ... unless the engine changed them
    crop_bytes(data, width, box, bytes_per_pixel)
    swap_red_blue / bgra_to_rgba / rgba_to_bgra(data, dtype="u8", channels=4)
    typed_values(data, "u16"|"f32") -> array of numbers, wire_bytes(array) -> little-endian bytes
    dtype_for_gimp_precision(nick), gimp_babl_format(dtype, channels), dtype_for_krita_depth(depth)
    image_array(data, w, h, dtype, channels=4), mask_array(mask, w, h), output_scale(crop, out)

Operations, from one schema (actions.py, schema.py, results.py, areas.py, ops.py)
    schema.snapshot()                # the engine's welcome["ops"], shipped as ops_schema.json
    schema.op_params(op, welcome=None)   # welcome's param schemas, else the snapshot's
    ACTIONS, BY_KEY["inpaint"|"remove"|"extend"|"restore"|"stylize"|"pattern"] -> Action(key, label,
        engine_op, fields, fixed, selection, context, own, source_input, ...): what both editors offer
    shown_fields(action, schema), build_params(action, values, schema), context_pixels(action, box)
    own_fields(action, host=None), own_values(action, values, host=None)   # plug-in-only fields (Extend
        canvas's sides, amount); host "gimp"/"krita": only the fields that editor shows
    source_array(mask, w, h) -> Array | None   # Remove's source mask; None when empty or full
    source_crop(crop, mask, area), source_params(params, box)   # the crop and context a source needs
    extend.plan_extension(w, h, sides, amount, unit) -> Extension; extend.request_box,
        extend.padded_pixels, extend.added_mask      # Extend canvas's geometry and request
    options(name, spec), label(name)     # choices with labels, field labels
    used_seed(params, meta)          # seed policy: send null for random, name layers with meta's
    layer_name(action, params, meta, variant), group_name(...), ordered_outputs(outputs)
    result_summary(meta)             # what restore found and did, to show in the status message
    transparent_area(pixels, layer_box, dtype) -> (bbox | None, mask); needs_selection(action)
    ops.require_op(welcome, op), ops.fit_params(welcome, op, params)
    model_choices(welcome, op, task=None, scale=None, param="model") -> [(value, label)]   # the model
        picker for an op (models.py): diffusion models its schema accepts, zoo models whose `serves`
        names the op (and restore's task/scale), never unreadable ones; models.pick(choices, current, default)
    schema.op_inputs(op, welcome=None)   # the op's declared inputs (Pattern repeat's ground, Recolor's reference)
    Action.extra_inputs, Action.output_labels   # inputs from another layer/file; named outputs (tile, preview)

GIMP patterns (gpat.py)
    gpat.encode(name, w, h, data, bpp), gpat.decode(blob) -> Pattern, gpat.from_array(name, arr),
    gpat.save(folder, name, arr) -> path       # a repeat tile as a .pat file

Errors
    LinkError(code, message, field): str(err) is the sentence to show; err.code to switch on.
    describe(code, message, field, address=..., op=...) for engine `error` replies.
"""
from __future__ import annotations

from . import autostart, ops, schema
from . import extend, gpat
from .actions import (ACTIONS, BY_KEY, Action, build_params, context_pixels, label, options, own_fields, own_values,
                      shown_fields)
from .areas import needs_selection, source_array, source_crop, source_params, transparent_area
from .errors import ENGINE_START_FAILED, ENGINE_UNREACHABLE, RELAY_FAILED, LinkError, describe
from .geometry import Box, crop_box, default_context, layer_box
from .pixels import (bgra_to_rgba, bytes_per_pixel, clear_outside_mask, clear_unchanged_outside, crop_bytes, dtype_for_gimp_precision, dtype_for_krita_depth,
                     full_mask, gimp_babl_format, image_array, mask_array, mask_bbox, mask_is_empty, mask_is_full,
                     mask_to_u8, opacity_mask, output_scale, rgba_to_bgra, swap_red_blue, transparency_mask, typed_values,
                     wire_bytes)
from .results import group_name, layer_name, ordered_outputs, result_summary, used_seed
from .session import Event, Job, Session
from .settings import DEFAULT_ADDRESS, Settings
from .settings import load as load_settings
from . import models
from .models import model_choices
from .transport import RelayTransport, Transport, ZmqTransport, zmq_available
from .wire import MSGPACK, Array

__version__ = "0.1.0"

__all__ = [
    "ACTIONS", "Action", "BY_KEY", "build_params", "context_pixels", "group_name", "label", "layer_name",
    "autostart", "extend", "gpat", "needs_selection", "ops", "options", "own_fields", "own_values", "source_array", "source_crop", "source_params", "ordered_outputs", "result_summary", "schema", "shown_fields",
    "transparency_mask", "transparent_area", "used_seed",
    "Array", "Box", "DEFAULT_ADDRESS", "ENGINE_START_FAILED", "ENGINE_UNREACHABLE", "Event", "Job", "LinkError", "MSGPACK",
    "RELAY_FAILED", "RelayTransport", "Session", "Settings", "Transport", "ZmqTransport", "bgra_to_rgba",
    "bytes_per_pixel", "clear_outside_mask", "clear_unchanged_outside", "crop_box", "crop_bytes", "default_context", "describe", "dtype_for_gimp_precision",
    "dtype_for_krita_depth", "full_mask", "gimp_babl_format", "image_array", "layer_box", "load_settings",
    "mask_array", "mask_bbox", "mask_is_empty", "mask_is_full", "mask_to_u8", "opacity_mask", "output_scale", "rgba_to_bgra",
    "swap_red_blue", "typed_values", "wire_bytes", "zmq_available",
]
__all__ += ["model_choices", "models"]
