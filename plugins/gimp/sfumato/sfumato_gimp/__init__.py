"""The GIMP plug-in's modules, beside its entry point sfumato.py (GIMP's plug-in scan skips folders).

arguments.py: procedure arguments from the engine's schema (no GIMP import, tested without GIMP);
canvas.py: reading the layer and selection, writing result layers;
connection.py: settings, talking to the engine, progress;
procedures.py: what each procedure does.
"""
