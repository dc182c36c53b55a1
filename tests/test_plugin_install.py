"""`sfumato plugins install gimp`: the installed folder is what GIMP 3 loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import plugin_install


def test_gimp_install_layout_and_exec_bit(tmp_path):
    lines: list[str] = []
    paths = plugin_install.install("gimp", str(tmp_path), out=lines.append)
    target = tmp_path / "sfumato"
    main = target / "sfumato.py"
    assert str(target) in paths and main.is_file()
    assert os.access(main, os.X_OK) and main.read_text().startswith("#!/usr/bin/env python3")
    assert (target / "sfumato_link" / "__init__.py").is_file()
    assert (target / "sfumato_link" / "ops_schema.json").is_file()  # the procedure arguments come from it
    assert (target / "sfumato_gimp" / "procedures.py").is_file()
    assert not list(target.rglob("__pycache__"))
    record = json.loads((target / "sfumato_install.json").read_text())
    assert record["python"] == sys.executable
    assert "sfumato serve" in "\n".join(lines)
    plugin_install.install("gimp", str(tmp_path), out=lines.append)  # reinstall over our own copy
    assert main.is_file()


def test_installed_thin_client_finds_the_recorded_python(tmp_path):
    plugin_install.install("gimp", str(tmp_path), out=lambda _: None)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import sfumato_link as sl; "
            "s = sl.load_settings(env={}); print(s.python); print(s.engine_root)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sfumato")], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    python, root = out.stdout.splitlines()
    assert python == sys.executable and (Path(root) / "engine" / "relay.py").is_file()


def test_install_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "sfumato").mkdir()
    (tmp_path / "sfumato" / "precious.txt").write_text("not ours")
    with pytest.raises(FileExistsError):
        plugin_install.install("gimp", str(tmp_path), out=lambda _: None)
    assert (tmp_path / "sfumato" / "precious.txt").exists()


def test_unknown_host_and_default_folders(tmp_path):
    with pytest.raises(ValueError):
        plugin_install.install("photoshop", str(tmp_path))
    home = Path("/home/u")
    assert plugin_install.gimp_plugins_folder(home, "darwin") == home / "Library/Application Support/GIMP/3.0/plug-ins"
    linux = plugin_install.gimp_plugins_folder(home, "linux")
    assert linux.parts[-3:] == ("GIMP", "3.0", "plug-ins")


def test_gimp_folder_follows_the_newest_gimp_3_profile(tmp_path, monkeypatch):
    """GIMP 3.2 keeps its profile in GIMP/3.2: install there once it has run."""
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for version in ("3.0", "3.2", "3.10x", "2.10"):
        (tmp_path / ".config" / "GIMP" / version).mkdir(parents=True)
    assert plugin_install.gimp_plugins_folder(tmp_path, "linux") == tmp_path / ".config" / "GIMP" / "3.2" / "plug-ins"


def test_gimp_pack_unpacks_into_the_plugin_folder_layout(tmp_path):
    """`sfumato plugins pack gimp`: one sfumato/ folder with an executable sfumato.py, the thin
    client and the install record; unpacked, the thin client finds the engine's Python."""
    import zipfile

    from engine.cli import main

    out = tmp_path / "sfumato-gimp.zip"
    assert main(["plugins", "pack", "gimp", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"sfumato"}
        for name in ("sfumato/sfumato.py", "sfumato/sfumato_gimp/procedures.py", "sfumato/sfumato_link/__init__.py",
                     "sfumato/sfumato_link/autostart.py", "sfumato/sfumato_install.json"):
            assert name in names, name
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert (zf.getinfo("sfumato/sfumato.py").external_attr >> 16) & 0o111  # executable once unpacked
        plugins = tmp_path / "plug-ins"
        for info in zf.infolist():  # as an unzip tool does: files with their recorded mode
            path = Path(zf.extract(info, plugins))
            if info.external_attr >> 16:
                path.chmod((info.external_attr >> 16) & 0o777)
    assert os.access(plugins / "sfumato" / "sfumato.py", os.X_OK)
    code = "import sys; sys.path.insert(0, sys.argv[1]); import sfumato_link as sl; print(sl.load_settings(env={}).python)"
    found = subprocess.run([sys.executable, "-c", code, str(plugins / "sfumato")], capture_output=True, text=True,
                           check=True, cwd=tmp_path).stdout.strip()
    assert found == sys.executable
