"""Install a plug-in zip the way Krita's Tools > Scripts > Import Python Plugin from File... does:
with Krita's own importer module (pure Python), into a resources folder's pykrita/.

    python import_zip.py KRITA_PLUGIN_IMPORTER_PY ZIP RESOURCES_DIR
"""
from __future__ import annotations

import builtins
import importlib.util
import sys


def main(importer: str, zip_path: str, resources: str) -> int:
    if not hasattr(builtins, "i18n"):  # Krita 6's importer takes Krita's translation function from builtins
        builtins.i18n = lambda text, *args: text
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", importer)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = module.PluginImporter(zip_path, resources, lambda plugin: True).import_all()
    names = [p["name"] for p in imported]
    print(f"Krita's importer installed {names} into {resources}/pykrita")
    return 0 if names == ["sfumato"] else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
