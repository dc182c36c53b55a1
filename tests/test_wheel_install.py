"""The wheel: built from the sources, installed (not editable) into a fresh venv, and served
from outside the checkout, where it must find the built-in model it carries.

The fresh venv reuses this interpreter's installed dependencies (torch and the rest) through a
.pth line instead of downloading them; only the wheel itself is installed into it.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import free_port
from degrade import add_noise, clean_scene, psnr
from engine.client import Client

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("engine", "pyproject.toml", "setup.py", "README.md")  # what the build reads
MAX_WHEEL_MB = 8  # code plus the ~6 MB built-in model, nothing else


def _can_build() -> str | None:
    """Why no wheel can be built here (None when it can): pip and a wheel-building setuptools."""
    if importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None:
        return "pip and setuptools are needed to build the wheel"
    version = importlib.metadata.version("setuptools")  # not imported here: it would patch distutils
    major, minor = (int(p) for p in version.split(".")[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {version} builds wheels only with the 'wheel' package"
    if not (REPO / "models" / "builtin" / "model.safetensors").is_file():
        return "models/builtin is not in this checkout"
    return None


def _run(*cmd: str | Path, cwd: Path) -> None:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (so no build/ is left in the checkout)."""
    reason = _can_build()
    if reason:
        pytest.skip(reason)
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                         if (REPO / name).is_dir() else {}))
    shutil.copytree(REPO / "models" / "builtin", src / "models" / "builtin")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", src / "dist", ".", cwd=src)
    (built,) = (src / "dist").glob("sfumato-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the installed wheel; dependencies come from this interpreter."""
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", root, cwd=root)
    python = root / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [*site.getsitepackages(), site.getusersitepackages()]
    (Path(purelib) / "_sfumato_test_deps.pth").write_text("\n".join(deps) + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=root)
    return root


def test_wheel_holds_the_engine_and_the_builtin_model_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "engine/models/builtin/model.safetensors" in names and "engine/models/builtin/model.json" in names
    assert "engine/weights/defect_detector.safetensors" in names  # the old-photo defect detector
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"engine"}, tops  # no tests, bench or docs
    packages = {str(p.parent.relative_to(REPO)) for p in (REPO / "engine").rglob("__init__.py")}
    assert packages <= {str(Path(n).parent) for n in names}, "a package of engine/ is missing from the wheel"
    assert wheel.stat().st_size < MAX_WHEEL_MB * 2**20


def test_installed_serve_finds_the_builtin_model(venv, tmp_path):
    """`sfumato serve` with no --models, run elsewhere, serves the built-in model from the wheel."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    where = subprocess.run([str(bindir / "python"), "-c", "import engine; print(engine.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where).resolve().is_relative_to(venv.resolve()), where  # the installed copy, not the checkout

    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([str(bindir / "sfumato"), "serve", "--bind", address, "--device", "cpu"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "ready" in line and "models: builtin" in line, (line, proc.stderr.read() if proc.poll() else "")
        with Client(address, timeout=60) as client:
            assert "builtin" in [m["name"] for m in client.hello()["models"]]
            clean = clean_scene(48, 48, 3)
            noisy = add_noise(clean, 20)
            out = client.restore(noisy, task="denoise", sigma=20)
        assert psnr(out, clean) > psnr(noisy, clean) + 3  # the trained weights, not a stand-in
    finally:
        proc.kill()
        proc.wait()
