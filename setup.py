"""Package layout for the wheel; everything else about the project is in pyproject.toml.

The repository keeps the shipped models in models/ beside engine/; a wheel carries the
built-in one inside the package, as engine/models/builtin, so an installed `sfumato serve`
finds it (engine.registry.package_models is the one rule that reads either place). The defect
detector's weights live inside the package already (engine/weights).
"""
from setuptools import find_packages, setup

SHIPPED = ["builtin/model.json", "builtin/model.safetensors", "builtin/README.md"]

setup(
    packages=[*find_packages(include=["engine", "engine.*"]), "engine.models"],
    package_dir={"engine.models": "models"},
    package_data={"engine.models": SHIPPED, "engine.zoo": ["catalog.json"],
                  "engine": ["weights/defect_detector.safetensors", "weights/defect_detector.json"]},
)
