#!/usr/bin/env python3
"""Sfumato for GIMP 3: Filters > Sfumato > Inpaint, Remove Object, Extend Canvas, Restore, Stylize,
Generate, Pattern Repeat, Recolor, Status.

A thin plug-in: it reads the active layer and the selection, sends the selection's bounding
box plus some context to the Sfumato engine (a separate, long-lived process), follows its
progress, and pastes the result as a new layer in one undo step. All of the image work
happens in the engine; the protocol client is the shared `sfumato_link` package, found next
to this file once installed (or in plugins/common/ when run from a source checkout).
This file registers the procedures; sfumato_gimp/ holds what they do.
"""
from __future__ import annotations

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402


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
from sfumato_gimp import procedures  # noqa: E402

PLUG_IN = "sfumato"
MENU = "<Image>/Filters/Sfumato"
STATUS = "sfumato-engine-status"


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


def show_dialog(procedure, config, title: str, action=None) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init(PLUG_IN)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    dialog.fill(None)
    if action is not None:  # model arguments become pickers of the engine's models
        try:
            from sfumato_gimp import pickers

            pickers.attach(dialog, action, config)
        except Exception as exc:  # the dialog still opens, with the plain entries
            print(f"sfumato: model pickers unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


class Sfumato(Gimp.PlugIn):
    """Registers the procedures; GIMP starts one process per call."""

    PROCS = {**{name: label for name, (_, label) in procedures.IMAGE_PROCEDURES.items()},
             STATUS: "Engine Status…"}

    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return list(self.PROCS)

    def do_create_procedure(self, name):
        if name == STATUS:
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_status, None)
            procedures.add_status_arguments(proc)
        else:
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_image, None)
            if procedures.action_of(name).selection == "size":
                proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            else:
                proc.set_image_types("RGB*")
                proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            procedures.add_image_arguments(proc, name)
        proc.set_menu_label(self.PROCS[name])
        proc.add_menu_path(MENU)
        proc.set_attribution("Sfumato", "Sfumato", "2025")
        proc.set_documentation(*DOCS[name])
        return proc

    # run functions: every failure becomes a readable message, never a traceback
    def run_image(self, procedure, run_mode, image, drawables, config, run_data):
        name = procedure.get_name()
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not show_dialog(procedure, config, self.PROCS[name].rstrip("…"), procedures.action_of(name)):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:
            procedures.run_image(name, image, drawables, config)
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
            text = procedures.status(run_mode, config)
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
                              "Inpainting at full strength with a wider context; the selection grows a little and "
                              "the object is never copied. An optional channel (white = may copy) limits where "
                              "texture comes from. The result is a new layer.", None),
    "sfumato-extend-canvas": ("Enlarge the canvas and fill the new area (Sfumato engine)",
                              "Adds canvas on the chosen sides (pixels or percent), outpaints it from the active "
                              "layer and adds the fill as a new layer; canvas and layer are one undo step.", None),
    "sfumato-restore": ("Denoise, remove JPEG artefacts, upscale, deblur or repair (Sfumato engine)",
                        "Works on the selection (plus context) or the whole layer; the result is a new layer, "
                        "or a new/resized image for upscaling.", None),
    "sfumato-stylize": ("Re-render the layer or selection in the style of a reference image or a style model",
                        "The result is a new layer above the source.", None),
    "sfumato-generate-pattern": ("Generate a new (tileable) pattern as a layer or image (Sfumato engine)",
                                 "Width and height 0 take the selection's or the image's size.", None),
    "sfumato-pattern": ("Put the selection or layer into a textile repeat, or make it seamless (Sfumato engine)",
                        "The motif is the selection's box (unselected pixels transparent) or the layer with its "
                        "alpha; layouts seamless, grid, half-drop, half-brick, mirror, rotate4, over a transparent, "
                        "coloured or textured ground (a layer or file). The repeat tile, and an N x N preview when "
                        "asked, become new layers; the tile can also be saved as a GIMP pattern.", None),
    "sfumato-recolor": ("Recolour the selection or layer to a palette: colourways (Sfumato engine)",
                        "A palette of hex colours, or colours taken from a reference layer or file; shading and "
                        "line work stay. One new layer per colourway, covering the selection.", None),
    "sfumato-engine-status": ("Show the Sfumato engine's address, device, models and queue; set the address",
                              "Settings are remembered; SFUMATO_ENGINE and SFUMATO_PYTHON override them.", None),
}

if __name__ == "__main__":
    Gimp.main(Sfumato.__gtype__, sys.argv)
