"""Sfumato for Krita: a docker panel and shortcut actions that send the active layer and
selection to a local Sfumato engine and put the results back as new layers.

Inside Krita this registers the docker factory and the extension. Outside Krita (tests,
tools) importing the package does nothing, so its host-independent modules stay usable.
"""
from __future__ import annotations

try:
    import krita as _krita
except ImportError:  # not running inside Krita
    _krita = None

if _krita is not None and hasattr(_krita, "DockWidgetFactory"):
    from .docker import DOCKER_ID, SfumatoDocker
    from .extension import SfumatoExtension
    from .qt import enum

    _app = _krita.Krita.instance()
    _right = enum(_krita.DockWidgetFactoryBase, "DockPosition", "DockRight")  # a scoped enum in Krita 6
    _app.addDockWidgetFactory(_krita.DockWidgetFactory(DOCKER_ID, _right, SfumatoDocker))
    _app.addExtension(SfumatoExtension(_app))
