"""The Filters > Sfumato procedures: their arguments (from the schema) and what a run does.

Each image procedure is one shared action (sfumato_link.actions). Its engine parameters
become arguments through arguments.py, from the schema snapshot shipped with the thin
client; the few arguments that are GIMP's own (where a result goes, the crop margin, the
style file) are declared here.
"""
from __future__ import annotations

from dataclasses import replace

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

import sfumato_link as link  # noqa: E402

from . import arguments, canvas, connection, tiles  # noqa: E402

RW = GObject.ParamFlags.READWRITE
MARGIN_MAX = 2048

# procedure name -> (shared action key, menu label)
IMAGE_PROCEDURES = {
    "sfumato-inpaint": ("inpaint", "Inpaint Selection…"),
    "sfumato-remove-object": ("remove", "Remove Object…"),
    "sfumato-extend-canvas": ("extend", "Extend Canvas…"),
    "sfumato-restore": ("restore", "Restore…"),
    "sfumato-stylize": ("stylize", "Stylize…"),
    "sfumato-generate-pattern": ("pattern", "Generate Pattern…"),
    "sfumato-pattern": ("repeat", "Pattern Repeat…"),
    "sfumato-recolor": ("recolor", "Recolor (Colourways)…"),
}
UPSCALE_TARGETS = [("new-image", "New image"), ("resize-image", "Resize this image")]
GENERATE_TARGETS = [("new-layer", "New layer"), ("new-image", "New image")]
TRANSPORTS = [("auto", "Automatic"), ("zmq", "ZeroMQ"), ("relay", "Relay")]


def action_of(name: str) -> link.Action:
    return link.BY_KEY[IMAGE_PROCEDURES[name][0]]


def make_choice(items: list[tuple[str, str]]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(items):
        choice.add(nick, i, label, "")
    return choice


def engine_arguments(action: link.Action) -> list[arguments.Argument]:
    return arguments.for_action(action, link.schema.op_params(action.engine_op))


def add_argument(proc: Gimp.Procedure, arg: arguments.Argument) -> None:
    if arg.kind == "choice":
        choice = make_choice([(nick, label) for nick, label, _ in arg.options])
        proc.add_choice_argument(arg.name, arg.nick, arg.blurb, choice, arg.default, RW)
    elif arg.kind == "int":
        proc.add_int_argument(arg.name, arg.nick, arg.blurb, arg.min, arg.max, arg.default, RW)
    elif arg.kind == "double":
        proc.add_double_argument(arg.name, arg.nick, arg.blurb, arg.min, arg.max, arg.default, RW)
    elif arg.kind == "boolean":
        proc.add_boolean_argument(arg.name, arg.nick, arg.blurb, arg.default, RW)
    else:
        proc.add_string_argument(arg.name, arg.nick, arg.blurb, arg.default, RW)


def add_image_arguments(proc: Gimp.Procedure, name: str) -> None:
    """The engine's parameters for the procedure's action, then GIMP's own arguments."""
    action = action_of(name)
    if action.style_input:
        proc.add_file_argument("style-file", "Style _image", "A reference picture whose style to follow",
                               Gimp.FileChooserAction.OPEN, True, None, RW)
    for arg in engine_arguments(action):
        add_argument(proc, arg)
    if action.extra_inputs:
        tiles.add_input_arguments(proc, action)
        return  # no margin: these work on the selection's box (or the layer) as it is
    if action.source_input:
        proc.add_channel_argument("source-channel", "Copy _from (channel)",
                                  "Optional: a channel, white where texture may be copied from; none or an empty "
                                  "channel = the whole image", True, RW)
    if action.selection == "size":
        proc.add_choice_argument("target", "Put it _into", "A new layer here or a new image",
                                 make_choice(GENERATE_TARGETS), "new-layer", RW)
        return
    if action.engine_op == "restore":
        proc.add_choice_argument("upscale-target", "Upscale _into", "Where an upscaled result goes",
                                 make_choice(UPSCALE_TARGETS), "new-image", RW)
    proc.add_int_argument("margin", "_Margin", "Pixels of surroundings sent around the selection; -1 = auto",
                          -1, MARGIN_MAX, -1, RW)


def add_status_arguments(proc: Gimp.Procedure) -> None:
    defaults = link.load_settings()
    proc.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode, Gimp.RunMode.INTERACTIVE, RW)
    proc.add_string_argument("engine-address", "Engine _address",
                             "ZeroMQ address of the engine (SFUMATO_ENGINE overrides)", defaults.address, RW)
    proc.add_string_argument("engine-python", "Engine _Python",
                             "The engine's Python, used for the relay when this GIMP lacks pyzmq "
                             "(SFUMATO_PYTHON overrides)", defaults.python, RW)
    proc.add_choice_argument("transport", "_Transport", "How to reach the engine", make_choice(TRANSPORTS),
                             "auto", RW)
    proc.add_string_argument("server-key", "_Engine key file",
                             "An engine served with keys: its server.key (SFUMATO_SERVER_KEY overrides)",
                             defaults.server_key, RW)
    proc.add_string_argument("client-key", "_Client key file",
                             "This GIMP's NAME.key_secret from `sfumato keys add-client` (SFUMATO_CLIENT_KEY "
                             "overrides)", defaults.client_key, RW)
    proc.add_boolean_argument("autostart", "_Start the engine when needed",
                              "When no engine answers at a local address, start one with the engine's Python",
                              defaults.autostart, RW)
    proc.add_boolean_argument("keep-engine", "_Keep it running after GIMP closes",
                              "An engine started by the plug-in otherwise stops when GIMP exits",
                              defaults.keep_engine, RW)
    proc.add_boolean_argument("remember", "_Remember these settings", "Store them for next time", True, RW)
    proc.add_string_return_value("status", "Status", "The engine's status, as text", "", RW)


def one_layer(drawables) -> Gimp.Drawable:
    if len(drawables) != 1:
        raise link.LinkError("bad_selection", "Select exactly one layer in the Layers panel.")
    drawable = drawables[0]
    if not isinstance(drawable, Gimp.Layer) or isinstance(drawable, Gimp.LayerMask):
        raise link.LinkError("bad_selection", "Sfumato works on a layer: select a layer, not a mask or channel.")
    return drawable


def engine_params(action: link.Action, config) -> dict:
    """The procedure's engine arguments as `params`, checked against the schema."""
    schema = link.schema.op_params(action.engine_op) or {}
    values = arguments.read_values(engine_arguments(action), config.get_property)
    try:
        return link.build_params(action, values, schema)
    except ValueError as exc:
        raise link.LinkError("bad_param", str(exc)) from None


def own_values(action: link.Action, config) -> dict:
    """The plug-in's own arguments of `action` (Extend canvas's sides, amount, unit), checked."""
    values = arguments.read_values(engine_arguments(action), config.get_property)
    try:
        return link.own_values(action, values, arguments.HOST)
    except ValueError as exc:
        raise link.LinkError("bad_param", str(exc)) from None


def run_image(name: str, image: Gimp.Image, drawables, config) -> None:
    """Run an image procedure: read, submit, follow, paste. Raises LinkError with the sentence to show."""
    action = action_of(name)
    params = engine_params(action, config)
    if action.selection == "size":
        generate(action, params, image, drawables, config)
        return
    if action.selection in ("motif", "crop"):  # Pattern Repeat, Recolor
        tiles.run(action, params, own_values(action, config), image, one_layer(drawables), config)
        return
    margin = config.get_property("margin")
    if action.selection == "extend":
        extend(action, params, image, one_layer(drawables), config, None if margin < 0 else margin)
        return
    channel = config.get_property("source-channel") if action.source_input else None
    src = canvas.Source(image, one_layer(drawables), action, None if margin < 0 else margin, channel)
    inputs = src.inputs()
    if src.source is not None:
        params = link.source_params(params, src.crop)
    if action.style_input:
        style_file = config.get_property("style-file")
        if style_file is not None and style_file.get_path():
            inputs["style"] = canvas.read_file_as_u8(style_file)
        elif not params.get("style_model"):
            raise link.LinkError("bad_param", "choose a style: a reference image file, or a style model name",
                                 "params.style_model")
    if src.mask is not None:
        # soft edges come from the selection itself (Select > Feather); pixels outside it must not move
        params["feather"] = 0.0
    job = connection.run_job(action.engine_op, action.label, inputs, params)
    target = config.get_property("upscale-target") if action.engine_op == "restore" else "new-image"
    canvas.paste_results(src, action, params, job, target)
    summary = link.result_summary(job.meta)
    if summary:
        Gimp.message(f"Sfumato {action.label}: {summary}")


def extend(action: link.Action, params: dict, image: Gimp.Image, layer: Gimp.Layer, config,
           margin: int | None) -> None:
    """Extend Canvas: outpaint the added strips from the layer's pixels, then enlarge the canvas and
    add the fill as a new layer (one undo step). Nothing changes when the job fails."""
    own = own_values(action, config)
    try:
        ext = link.extend.plan_extension(image.get_width(), image.get_height(), own["sides"], own["amount"],
                                         own["unit"])
    except ValueError as exc:
        raise link.LinkError("bad_param", str(exc)) from None
    context = link.context_pixels(action, ext.added_bbox) if margin is None else margin
    box = link.extend.request_box(ext, context)
    dtype = link.dtype_for_gimp_precision(image.get_precision().value_nick)
    pixels = canvas.read_canvas(layer, ext.width, ext.height, link.gimp_babl_format(dtype, 4))
    inputs = {"image": link.image_array(link.extend.padded_pixels(pixels, ext, box, dtype), box.w, box.h, dtype, 4),
              "mask": link.mask_array(link.extend.added_mask(ext, box), box.w, box.h)}
    job = connection.run_job(action.engine_op, action.label, inputs, params)
    canvas.place_extension(image, layer, ext, box, action, params, job)


def generate(action: link.Action, params: dict, image: Gimp.Image | None, drawables, config) -> None:
    """A new image, or new layers at the selection (size 0 = the selection's, else the image's)."""
    schema = link.schema.op_params(action.engine_op) or {}
    into_image = image is not None and config.get_property("target") == "new-layer"
    size = {name: config.get_property(name) for name in ("width", "height") if name in schema}
    x = y = 0
    if into_image:
        ok, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        if non_empty:
            x, y, whole = x1, y1, {"width": x2 - x1, "height": y2 - y1}
        else:
            whole = {"width": image.get_width(), "height": image.get_height()}
        size = {name: value or whole[name] for name, value in size.items()}
    for name, value in size.items():
        try:
            params[name] = link.schema.coerce(value or None, schema[name])
        except ValueError as exc:
            raise link.LinkError("bad_param", f"{link.label(name)}: {exc}", f"params.{name}") from None
    job = connection.run_job(action.engine_op, action.label, {}, params)
    above = drawables[0] if into_image and len(drawables) == 1 else None
    canvas.place_generated(image if into_image else None, above, action, params, job, x, y)


def status(run_mode, config) -> str:
    """Engine Status: store the settings if asked, then describe the engine they reach."""
    base = connection.current_settings()
    address = config.get_property("engine-address") or base.address
    python = config.get_property("engine-python") or base.python
    settings = replace(base, address=address, python=python, transport=config.get_property("transport"),
                       autostart=config.get_property("autostart"), keep_engine=config.get_property("keep-engine"),
                       server_key=config.get_property("server-key") or "",
                       client_key=config.get_property("client-key") or "")
    if config.get_property("remember"):
        connection.save_settings(settings)
        settings = connection.current_settings()  # environment variables still win
    text = connection.engine_status_text(settings)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(text)
    return text
