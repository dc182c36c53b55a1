#!/usr/bin/env python3
"""Sfumato for GIMP 3: Filters > Sfumato > Inpaint, Remove Object, Restore, Stylize, Generate, Status.

A thin plug-in: it reads the active layer and the selection, sends the selection's bounding
box plus some context to the Sfumato engine (a separate, long-lived process), follows its
progress, and pastes the result as a new layer in one undo step. All of the image work
happens in the engine; the protocol client is the shared `sfumato_link` package, found next
to this file once installed (or in plugins/common/ when run from a source checkout).
"""
from __future__ import annotations

import os
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402


def _add_import_paths() -> None:
    """This folder (installed layout), plugins/common (source layout), and the vendored
    packages built for this exact Python (a cp311 pyzmq breaks Python 3.13)."""
    here = os.path.dirname(os.path.abspath(__file__))
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for path in (os.path.join(here, "_vendor", tag), os.path.join(here, "_vendor", "abi3"),
                 os.path.join(here, "_vendor", "py3"), here,
                 os.path.join(os.path.dirname(os.path.dirname(here)), "common")):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0 if "_vendor" not in path else 1, path)


_add_import_paths()

import sfumato_link as sl  # noqa: E402
from sfumato_link import ops as slops  # noqa: E402

PLUG_IN = "sfumato"
PARASITE = "sfumato-settings"
MENU = "<Image>/Filters/Sfumato"
RW = GObject.ParamFlags.READWRITE
PROGRESS_EVERY = 0.1  # seconds between progress bar redraws
INVERT = bytes(range(255, -1, -1))  # 255 - value, for bytes.translate


# ---- settings ------------------------------------------------------------------------------

def stored_settings() -> dict:
    """The settings saved from Engine Status (a persistent global parasite), as a dict."""
    try:
        parasite = Gimp.get_parasite(PARASITE)
    except Exception:
        return {}
    if parasite is None:
        return {}
    data = parasite.get_data()
    raw = bytes(data) if not isinstance(data, (bytes, bytearray)) else data
    return sl.Settings.from_json(raw.decode("utf-8", "replace")).to_dict()


def save_settings(settings: sl.Settings) -> None:
    data = settings.to_json().encode("utf-8")
    Gimp.attach_parasite(Gimp.Parasite.new(PARASITE, Gimp.PARASITE_PERSISTENT, list(data)))


def current_settings() -> sl.Settings:
    """Defaults < installer's file < saved parasite < SFUMATO_* environment variables."""
    return sl.load_settings(stored_settings())


# ---- choices ---------------------------------------------------------------------------------

def make_choice(items: list[tuple[str, str]]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(items):
        choice.add(nick, i, label, "")
    return choice


RESTORE_TASKS = [("auto", "Auto (estimate the damage)"), ("denoise", "Denoise"), ("jpeg", "Remove JPEG artefacts"),
                 ("upscale", "Upscale"), ("deblur", "Deblur"), ("repair", "Repair scratches and dust")]
UPSCALE_TARGETS = [("new-image", "New image"), ("resize-image", "Resize this image")]
GENERATE_TARGETS = [("new-layer", "New layer"), ("new-image", "New image")]
INPAINT_METHODS = [("diffusion", "Diffusion"), ("patch", "Patch (fast, copies nearby texture)")]


# ---- reading pixels and the selection ----------------------------------------------------------

class Source:
    """What a job reads: the layer, the crop box (image coordinates), pixels, mask, dtype."""

    def __init__(self, image: Gimp.Image, drawable: Gimp.Drawable, context: int | None, need_mask: bool,
                 context_fraction: float | None = None):
        self.image, self.drawable = image, drawable
        offsets = drawable.get_offsets()
        ox, oy = (offsets[1], offsets[2]) if len(offsets) == 3 else offsets
        self.layer_box = sl.layer_box(ox, oy, drawable.get_width(), drawable.get_height())
        ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        self.selection = sl.Box.from_corners(x1, y1, x2, y2) if non_empty else None
        if context is None and context_fraction is not None and self.selection is not None:
            context = sl.default_context(self.selection, fraction=context_fraction, maximum=384)
        self.crop = sl.crop_box(self.selection, self.layer_box, context)
        self.dtype = sl.dtype_for_gimp_precision(image.get_precision().value_nick)
        self.format = sl.gimp_babl_format(self.dtype, 4)
        local = self.crop.relative_to(self.layer_box)
        rect = Gegl.Rectangle.new(local.x, local.y, local.w, local.h)
        self.pixels = bytes(drawable.get_buffer().get(rect, 1.0, self.format, Gegl.AbyssPolicy.CLAMP))
        self.mask: bytes | None = None
        if self.selection is not None:
            sel_rect = Gegl.Rectangle.new(self.crop.x, self.crop.y, self.crop.w, self.crop.h)
            mask = bytes(image.get_selection().get_buffer().get(sel_rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
            self.mask = None if sl.mask_is_full(mask) and not need_mask else mask
        elif need_mask:
            self.mask = self._transparent_mask()

    def _transparent_mask(self) -> bytes:
        """No selection for an inpaint: fill what is transparent (outpainting an enlarged canvas)."""
        alpha = bytes(self.image_array_u8_alpha())
        if sl.mask_is_empty(alpha):
            raise sl.LinkError("bad_selection", "Select the area to fill first (or make it transparent): "
                               "with no selection, inpainting fills the transparent parts of the layer.")
        return alpha

    def image_array_u8_alpha(self) -> bytes:
        """255 - alpha, as u8, for the crop."""
        local = self.crop.relative_to(self.layer_box)
        rect = Gegl.Rectangle.new(local.x, local.y, local.w, local.h)
        rgba = bytes(self.drawable.get_buffer().get(rect, 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP))
        return rgba[3::4].translate(INVERT)

    def inputs(self, with_mask: bool = True) -> dict:
        result = {"image": sl.image_array(self.pixels, self.crop.w, self.crop.h, self.dtype, 4)}
        if with_mask and self.mask is not None:
            result["mask"] = sl.mask_array(self.mask, self.crop.w, self.crop.h)
        return result


def read_file_as_u8(path_file) -> sl.Array:
    """A style reference picked in the dialog, loaded through GIMP, flattened to RGB u8."""
    ref = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, path_file)
    try:
        layer = ref.flatten()
        w, h = layer.get_width(), layer.get_height()
        data = bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B' u8",
                                            Gegl.AbyssPolicy.CLAMP))
        return sl.Array((h, w, 3), "u8", data)
    finally:
        ref.delete()


# ---- writing results ---------------------------------------------------------------------------

def new_layer(image: Gimp.Image, name: str, out: sl.Array, fmt: str, x: int, y: int,
              above: Gimp.Drawable | None) -> Gimp.Layer:
    layer = Gimp.Layer.new(image, name, out.width, out.height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                           Gimp.LayerMode.NORMAL)
    if above is not None and isinstance(above, Gimp.Layer):
        image.insert_layer(layer, above.get_parent(), image.get_item_position(above))
    else:
        image.insert_layer(layer, None, 0)
    layer.set_offsets(x, y)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, out.width, out.height), fmt, out.tobytes())
    buf.flush()
    layer.update(0, 0, out.width, out.height)
    return layer


def paste_results(src: Source, label: str, params: dict, job: sl.Job, keys: tuple[str, ...],
                  upscale_target: str = "new-image") -> list[Gimp.Layer]:
    """Each output variant becomes a new layer above the source, at the crop's offset, in one undo step."""
    outputs = slops.ordered_outputs(job.outputs)
    if not outputs:
        raise sl.LinkError("internal", "the engine returned no image")
    fmt = sl.gimp_babl_format(outputs[0][1].dtype, outputs[0][1].channels)
    scale = sl.output_scale(src.crop, outputs[0][1])
    image, x, y, above = src.image, src.crop.x, src.crop.y, src.drawable
    if scale != 1.0 and upscale_target == "new-image":
        first = outputs[0][1]
        image = Gimp.Image.new_with_precision(first.width, first.height, Gimp.ImageBaseType.RGB,
                                              src.image.get_precision())
        x = y = 0
        above = None
    layers = []
    image.undo_group_start()
    try:
        if scale != 1.0 and upscale_target == "resize-image":
            image.scale(round(image.get_width() * scale), round(image.get_height() * scale))
            x, y = round(x * scale), round(y * scale)
        for i, (_, out) in enumerate(outputs):
            if src.mask is not None and scale == 1.0:  # the layer covers only what may change
                out = sl.Array(out.shape, out.dtype, sl.clear_outside_mask(out.data, src.mask, out.dtype,
                                                                           out.channels))
            name = slops.layer_name(label, params, job.meta, keys, variant=i if len(outputs) > 1 else 0)
            layers.append(new_layer(image, name, out, fmt, x, y, above))
    finally:
        image.undo_group_end()
    if image is not src.image:
        try:
            Gimp.Display.new(image)
        except Exception:
            pass  # batch mode has no displays; the image is still there for scripts
    Gimp.displays_flush()
    return layers


# ---- talking to the engine ---------------------------------------------------------------------

def run_job(op: str, label: str, inputs: dict, params: dict) -> sl.Job:
    """Connect, submit, follow progress in GIMP's progress bar, return the finished job.

    Cancelling GIMP's progress kills this process; the guard (zmq) or the relay then sends
    `cancel` to the engine on our behalf.
    """
    settings = current_settings()
    session = sl.Session.open(settings, client=f"gimp-{Gimp.version()}", guard=True)
    try:
        Gimp.progress_init(f"Sfumato {label}: connecting to {settings.address}")
        welcome = session.hello()
        slops.require_op(welcome, op)
        params, _dropped = slops.fit_params(welcome, op, params)
        job = session.submit(op, inputs, params)
        last = [0.0]

        def show(event: sl.Event) -> None:
            now = time.monotonic()
            if event.job is job and (now - last[0] > PROGRESS_EVERY or event.type != "progress"):
                last[0] = now
                if job.state == "queued":
                    Gimp.progress_set_text(f"Sfumato {label}: queued (position {job.position})")
                elif job.state == "running":
                    Gimp.progress_set_text(f"Sfumato {label}: {job.stage} {job.step}/{job.total}")
                    Gimp.progress_update(job.fraction)

        job.wait(on_event=show)
        Gimp.progress_update(1.0)
        return job
    finally:
        session.close()
        Gimp.progress_end()


# ---- procedures ----------------------------------------------------------------------------------

def failure(procedure, run_mode, text: str):
    """A readable message, never a traceback.

    Interactive: shown with Gimp.message, and the run ends as cancelled so that GIMP does not
    show the same text a second time. Scripts and batch mode: EXECUTION_ERROR with the text.
    """
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(text)
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(), text, 0))


def show_dialog(procedure, config, title: str) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PLUG_IN)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    dialog.fill(None)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def one_layer(drawables) -> Gimp.Drawable:
    if len(drawables) != 1:
        raise sl.LinkError("bad_selection", "Select exactly one layer in the Layers panel.")
    drawable = drawables[0]
    if not isinstance(drawable, Gimp.Layer) or isinstance(drawable, Gimp.LayerMask):
        raise sl.LinkError("bad_selection", "Sfumato works on a layer: select a layer, not a mask or channel.")
    return drawable


def context_arg(config) -> int | None:
    value = config.get_property("context")
    return None if value < 0 else value


def do_inpaint(procedure, run_mode, image, drawables, config, remove: bool):
    drawable = one_layer(drawables)
    if remove:
        # removal wants more surroundings than a plain inpaint
        src = Source(image, drawable, None, need_mask=True, context_fraction=slops.REMOVE_CONTEXT_FRACTION)
        params = dict(slops.REMOVE_PARAMS, seed=None, feather=0.0)
        label, keys = "remove", slops.NAME_KEYS["remove"]
    else:
        src = Source(image, drawable, context_arg(config), need_mask=True)
        params = {"strength": config.get_property("strength"), "steps": config.get_property("steps"),
                  "seed": slops.seed_param(config.get_property("seed")),
                  "variants": config.get_property("variants"), "method": config.get_property("method")}
        params["feather"] = 0.0  # soft edges come from the selection itself (Select > Feather)
        label, keys = "inpaint", slops.NAME_KEYS["inpaint"]
    job = run_job("inpaint", label, src.inputs(), params)
    paste_results(src, label, params, job, keys)


def do_restore(procedure, run_mode, image, drawables, config):
    drawable = one_layer(drawables)
    src = Source(image, drawable, context_arg(config), need_mask=False)
    sigma, quality = config.get_property("sigma"), config.get_property("quality")
    params = {"task": config.get_property("task"), "scale": int(config.get_property("scale")),
              "sigma": None if sigma < 0 else sigma, "quality": None if quality < 1 else quality,
              "steps": config.get_property("steps") or None, "seed": slops.seed_param(config.get_property("seed"))}
    if "upscale" not in params["task"]:
        params.pop("scale")
    if src.mask is not None:
        params["feather"] = 0.0  # the selection's own edge; pixels outside it must not move
    job = run_job("restore", "restore", src.inputs(), params)
    paste_results(src, "restore", params, job, slops.NAME_KEYS["restore"], config.get_property("upscale-target"))


def do_stylize(procedure, run_mode, image, drawables, config):
    drawable = one_layer(drawables)
    src = Source(image, drawable, context_arg(config), need_mask=False)
    inputs = src.inputs()
    style_file = config.get_property("style-file")
    if style_file is not None and style_file.get_path():
        inputs["style"] = read_file_as_u8(style_file)
    params = {"strength": config.get_property("strength"), "structure": config.get_property("structure"),
              "steps": config.get_property("steps"), "seed": slops.seed_param(config.get_property("seed"))}
    if src.mask is not None:
        params["feather"] = 0.0  # the selection's own edge; pixels outside it must not move
    model = config.get_property("style-model")
    if model:
        params["style_model"] = model
    if "style" not in inputs and not model:
        raise sl.LinkError("bad_param", "choose a style: a reference image file, or a style model name",
                           "params.style_model")
    job = run_job("stylize", "stylize", inputs, params)
    paste_results(src, "stylize", params, job, slops.NAME_KEYS["stylize"])


def do_generate(procedure, run_mode, image, drawables, config):
    target = config.get_property("target")
    width, height = config.get_property("width"), config.get_property("height")
    x = y = 0
    if image is not None and target == "new-layer":
        ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        if non_empty:
            x, y = x1, y1
            width, height = width or (x2 - x1), height or (y2 - y1)
        width, height = width or image.get_width(), height or image.get_height()
    width, height = width or 512, height or 512
    params = {"width": width, "height": height, "tileable": config.get_property("tileable"),
              "steps": config.get_property("steps"), "seed": slops.seed_param(config.get_property("seed")),
              "variants": config.get_property("variants")}
    job = run_job("generate", "pattern", {}, params)
    outputs = slops.ordered_outputs(job.outputs)
    if not outputs:
        raise sl.LinkError("internal", "the engine returned no image")
    dtype = outputs[0][1].dtype
    fmt = sl.gimp_babl_format(dtype, outputs[0][1].channels)
    above = None
    if image is None or target == "new-image":
        precision = {"u8": Gimp.Precision.U8_NON_LINEAR, "u16": Gimp.Precision.U16_NON_LINEAR,
                     "f32": Gimp.Precision.FLOAT_NON_LINEAR}[dtype]
        image = Gimp.Image.new_with_precision(outputs[0][1].width, outputs[0][1].height, Gimp.ImageBaseType.RGB,
                                              precision)
        x = y = 0
        show = True
    else:
        above = drawables[0] if len(drawables) == 1 else None
        show = False
    image.undo_group_start()
    try:
        for i, (_, out) in enumerate(outputs):
            name = slops.layer_name("pattern", params, job.meta, slops.NAME_KEYS["generate"],
                                    variant=i if len(outputs) > 1 else 0)
            new_layer(image, name, out, fmt, x, y, above)
    finally:
        image.undo_group_end()
    if show:
        try:
            Gimp.Display.new(image)
        except Exception:
            pass
    Gimp.displays_flush()
    return image


def engine_status_text(settings: sl.Settings) -> str:
    session = sl.Session.open(settings, client=f"gimp-{Gimp.version()}")
    try:
        welcome = session.hello()
        status = session.status()
        models = welcome.get("models") or []
        names = ", ".join(str(m.get("name", m)) if isinstance(m, dict) else str(m) for m in models) or "none"
        ops = ", ".join(sorted(k for k, v in (welcome.get("ops") or {}).items() if not v.get("test_only")))
        return (f"Sfumato engine {welcome.get('engine', '?')} at {settings.address} "
                f"(via {session.transport.kind})\n"
                f"Device: {welcome.get('device', '?')}\nModels: {names}\nOperations: {ops or 'none'}\n"
                f"Queue: {'1 running' if status.get('running') else 'idle'}, {status.get('queued', 0)} queued")
    finally:
        session.close()


def do_status(procedure, run_mode, config) -> str:
    base = current_settings()
    address = config.get_property("engine-address") or base.address
    python = config.get_property("engine-python") or base.python
    settings = sl.Settings(address=address, python=python, engine_root=base.engine_root,
                           transport=config.get_property("transport"), timeout=base.timeout)
    if config.get_property("remember"):
        save_settings(settings)
        settings = current_settings()  # environment variables still win
    text = engine_status_text(settings)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(text)
    return text


# ---- registration --------------------------------------------------------------------------------

def add_seed_steps(proc, steps_default: int, steps_max: int = 200) -> None:
    proc.add_int_argument("steps", "Ste_ps", "Sampler steps (more: slower, finer)", 1, steps_max, steps_default, RW)
    proc.add_int_argument("seed", "_Seed", "Random seed; -1 picks one (the layer name shows it)",
                          -1, 2**31 - 1, -1, RW)


def add_context(proc) -> None:
    proc.add_int_argument("context", "Conte_xt", "Pixels of surroundings sent around the selection; -1 = auto",
                          -1, 2048, -1, RW)


class Sfumato(Gimp.PlugIn):
    """Registers the procedures; GIMP starts one process per call."""

    PROCS = {
        "sfumato-inpaint": "Inpaint Selection…",
        "sfumato-remove-object": "Remove Object",
        "sfumato-restore": "Restore…",
        "sfumato-stylize": "Stylize…",
        "sfumato-generate-pattern": "Generate Pattern…",
        "sfumato-engine-status": "Engine Status…",
    }

    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return list(self.PROCS)

    def do_create_procedure(self, name):
        if name == "sfumato-engine-status":
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_status, None)
            proc.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                   Gimp.RunMode.INTERACTIVE, RW)
            defaults = sl.load_settings()
            proc.add_string_argument("engine-address", "Engine _address",
                                     "ZeroMQ address of the engine (SFUMATO_ENGINE overrides)", defaults.address, RW)
            proc.add_string_argument("engine-python", "Engine _Python",
                                     "The engine's Python, used for the relay when this GIMP lacks pyzmq "
                                     "(SFUMATO_PYTHON overrides)", defaults.python, RW)
            proc.add_choice_argument("transport", "_Transport", "How to reach the engine",
                                     make_choice([("auto", "Automatic"), ("zmq", "ZeroMQ"), ("relay", "Relay")]),
                                     "auto", RW)
            proc.add_boolean_argument("remember", "_Remember these settings", "Store them for next time",
                                      True, RW)
            proc.add_string_return_value("status", "Status", "The engine's status, as text", "", RW)
        else:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_image, None)
            if name == "sfumato-generate-pattern":
                proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            else:
                proc.set_image_types("RGB*")
                proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            self._add_arguments(name, proc)
        proc.set_menu_label(self.PROCS[name])
        proc.add_menu_path(MENU)
        proc.set_attribution("Sfumato", "Sfumato", "2025")
        proc.set_documentation(*DOCS[name])
        return proc

    def _add_arguments(self, name, proc) -> None:
        if name == "sfumato-inpaint":
            proc.add_double_argument("strength", "S_trength", "1 replaces the selection; less refines what is there",
                                     0.05, 1.0, 1.0, RW)
            add_seed_steps(proc, 20)
            proc.add_int_argument("variants", "_Variants", "How many results (one layer each)", 1, 8, 1, RW)
            proc.add_choice_argument("method", "_Method", "How to fill", make_choice(INPAINT_METHODS), "diffusion", RW)
            add_context(proc)
        elif name == "sfumato-restore":
            proc.add_choice_argument("task", "_Task", "What to repair", make_choice(RESTORE_TASKS), "auto", RW)
            proc.add_int_argument("scale", "Upscale _factor", "2 or 4 (for Upscale)", 2, 4, 2, RW)
            proc.add_choice_argument("upscale-target", "Upscale _into", "Where an upscaled result goes",
                                     make_choice(UPSCALE_TARGETS), "new-image", RW)
            proc.add_double_argument("sigma", "_Noise level", "Noise standard deviation in 0..255 units; -1 = estimate",
                                     -1.0, 100.0, -1.0, RW)
            proc.add_int_argument("quality", "JPEG _quality", "Quality the JPEG was saved with; -1 = estimate",
                                  -1, 100, -1, RW)
            proc.add_int_argument("steps", "Ste_ps", "Denoiser calls per tile; 0 = the engine's default for the task",
                                  0, 100, 0, RW)
            proc.add_int_argument("seed", "_Seed", "Random seed; -1 picks one", -1, 2**31 - 1, -1, RW)
            add_context(proc)
        elif name == "sfumato-stylize":
            proc.add_file_argument("style-file", "Style _image", "A reference picture whose style to follow",
                                   Gimp.FileChooserAction.OPEN, True, None, RW)
            proc.add_string_argument("style-model", "Style _model", "Name of a style model in the engine's models/ "
                                     "(instead of an image)", "", RW)
            proc.add_double_argument("strength", "S_trength", "How far to depart from the original", 0.05, 1.0, 0.45, RW)
            proc.add_double_argument("structure", "Str_ucture", "How much of the layout and edges to keep",
                                     0.0, 1.0, 0.5, RW)
            add_seed_steps(proc, 16)
            add_context(proc)
        elif name == "sfumato-generate-pattern":
            proc.add_int_argument("width", "_Width", "Pixels; 0 = selection or image width", 0, 8192, 0, RW)
            proc.add_int_argument("height", "_Height", "Pixels; 0 = selection or image height", 0, 8192, 0, RW)
            proc.add_boolean_argument("tileable", "_Tileable", "Seamless when repeated", True, RW)
            proc.add_choice_argument("target", "Put it _into", "A new layer here or a new image",
                                     make_choice(GENERATE_TARGETS), "new-layer", RW)
            proc.add_int_argument("variants", "_Variants", "How many patterns (one layer each)", 1, 8, 1, RW)
            add_seed_steps(proc, 24)

    # run functions: every failure becomes a readable message, never a traceback
    def run_image(self, procedure, run_mode, image, drawables, config, run_data):
        name = procedure.get_name()
        if run_mode == Gimp.RunMode.INTERACTIVE and name != "sfumato-remove-object":
            if not show_dialog(procedure, config, self.PROCS[name].rstrip("…")):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            if name in ("sfumato-inpaint", "sfumato-remove-object"):
                do_inpaint(procedure, run_mode, image, drawables, config, remove=name == "sfumato-remove-object")
            elif name == "sfumato-restore":
                do_restore(procedure, run_mode, image, drawables, config)
            elif name == "sfumato-stylize":
                do_stylize(procedure, run_mode, image, drawables, config)
            elif name == "sfumato-generate-pattern":
                do_generate(procedure, run_mode, image, drawables, config)
        except sl.LinkError as err:
            return failure(procedure, run_mode, str(err))
        except Exception as exc:  # a plug-in bug: still a sentence, with the type for the bug report
            return failure(procedure, run_mode, f"Sfumato failed: {type(exc).__name__}: {exc}")
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def run_status(self, procedure, config, run_data):
        run_mode = config.get_property("run-mode")
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not show_dialog(procedure, config, "Sfumato Engine"):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            text = do_status(procedure, run_mode, config)
        except sl.LinkError as err:
            return failure(procedure, run_mode, str(err))
        except Exception as exc:
            return failure(procedure, run_mode, f"Sfumato failed: {type(exc).__name__}: {exc}")
        result = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
        result.remove(1)
        result.insert(1, GObject.Value(GObject.TYPE_STRING, text))
        return result


DOCS = {
    "sfumato-inpaint": ("Fill the selection so that it matches its surroundings (Sfumato engine)",
                        "Sends the selection's bounding box plus context to the Sfumato engine and adds the "
                        "result as a new layer. With no selection, fills the transparent parts of the layer.",
                        None),
    "sfumato-remove-object": ("Remove what is selected and fill in the background (Sfumato engine)",
                              "Inpainting at full strength with a wider context; the result is a new layer.", None),
    "sfumato-restore": ("Denoise, remove JPEG artefacts, upscale, deblur or repair (Sfumato engine)",
                        "Works on the selection (plus context) or the whole layer; the result is a new layer, "
                        "or a new/resized image for upscaling.", None),
    "sfumato-stylize": ("Re-render the layer or selection in the style of a reference image or a style model",
                        "The result is a new layer above the source.", None),
    "sfumato-generate-pattern": ("Generate a new (tileable) pattern as a layer or image (Sfumato engine)",
                                 "Width and height 0 take the selection's or the image's size.", None),
    "sfumato-engine-status": ("Show the Sfumato engine's address, device, models and queue; set the address",
                              "Settings are remembered; SFUMATO_ENGINE and SFUMATO_PYTHON override them.", None),
}

if __name__ == "__main__":
    Gimp.main(Sfumato.__gtype__, sys.argv)
