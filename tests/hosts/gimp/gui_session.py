"""Runs inside gimp-3.0 (GUI, under Xvfb) for the undo check and the screenshots.

Opens the picture in a window, selects a region, runs Inpaint Selection interactively (the
dialog appears; gui.py presses OK), waits for gui.py to press Ctrl+Z, then records whether
one undo removed the result. Configuration: $SFUMATO_HOST_TEST (JSON: image, out, select).
"""
import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

CFG = json.load(open(os.environ["SFUMATO_HOST_TEST"]))
OUT = CFG["out"]
REPORT = {}


def marker(name):
    open(os.path.join(OUT, name), "w").close()


def wait_marker(name, timeout=300):
    path = os.path.join(OUT, name)
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    return os.path.exists(path)


def pixels(layer):
    w, h = layer.get_width(), layer.get_height()
    return bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))


def main():
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(CFG["image"]))
    Gimp.Display.new(image)
    layer = image.get_layers()[0]
    original = pixels(layer)
    x, y, w, h = CFG["select"]
    image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
    Gimp.displays_flush()
    marker("dialog")
    proc = Gimp.get_pdb().lookup_procedure("sfumato-inpaint")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    cfg.set_property("method", CFG.get("method", "diffusion"))
    cfg.set_property("seed", 7)
    result = proc.run(cfg)
    REPORT["status"] = result.index(0).value_nick
    REPORT["layers_after_run"] = [lay.get_name() for lay in image.get_layers()]
    Gimp.displays_flush()
    marker("ran")
    REPORT["undone_marker"] = wait_marker("undone")
    deadline = time.time() + 20
    while len(image.get_layers()) > 1 and time.time() < deadline:  # the key press takes effect asynchronously
        time.sleep(0.2)
    layers = image.get_layers()
    REPORT["layers_after_undo"] = [lay.get_name() for lay in layers]
    REPORT["undo_restored_pixels"] = len(layers) == 1 and pixels(layers[0]) == original
    image.clean_all()


def picker_check():
    """The Restore dialog's model picker, built the way the plug-in builds it (sfumato_gimp.pickers on
    a GimpUi.ProcedureDialog of sfumato-restore), shown on the display and screenshotted: what it
    offers for upscale x4, then after Scale is set to 2 and Task to denoise (the list follows)."""
    model = CFG.get("zoo_model")
    if not model:
        return
    import subprocess
    import sys

    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    from gi.repository import GimpUi, Gtk

    sys.path.insert(0, CFG["plugin_dir"])
    import sfumato_link as link
    from sfumato_gimp import pickers

    def pump(seconds):
        end = time.time() + seconds
        while time.time() < end:
            while Gtk.events_pending():
                Gtk.main_iteration()
            time.sleep(0.02)

    GimpUi.init("sfumato-host-test")
    proc = Gimp.get_pdb().lookup_procedure("sfumato-restore")
    cfg = proc.create_config()
    cfg.set_property("task", "upscale")
    cfg.set_property("scale", 4)
    cfg.set_property("model", model)
    dialog = GimpUi.ProcedureDialog.new(proc, cfg, "Restore")
    dialog.fill(None)
    combos = pickers.attach(dialog, link.BY_KEY["restore"], cfg)
    dialog.show()
    pump(1.5)
    seen = {"combos": len(combos)}
    if combos:
        store = combos[0].get_model()
        seen["upscale x4"] = [list(row) for row in store]
        seen["chosen x4"] = cfg.get_property("model")
        subprocess.run(["import", "-window", "root", os.path.join(OUT, "shot-picker.png")], timeout=30)
        cfg.set_property("scale", 2)
        pump(0.3)
        seen["upscale x2"] = [row[0] for row in store]
        seen["chosen x2"] = cfg.get_property("model")
        cfg.set_property("task", "denoise")
        pump(0.3)
        seen["denoise"] = [row[0] for row in store]
    dialog.destroy()
    pump(0.3)
    REPORT["picker"] = seen


try:
    try:
        picker_check()
    except Exception:
        import traceback

        REPORT["picker_crash"] = traceback.format_exc()
    main()
except Exception:
    import traceback

    REPORT["crash"] = traceback.format_exc()
with open(os.path.join(OUT, "gui_report.json"), "w") as f:
    json.dump(REPORT, f, indent=1)
marker("gui-done")
