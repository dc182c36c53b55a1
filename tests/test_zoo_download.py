"""`sfumato models get | rm` against a real HTTP server on 127.0.0.1 serving ../shared/models
with a test catalogue: success, wrong hash, truncated file, interrupted then resumed, unknown
name, server down, licence acceptance."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import free_port
from engine.registry import ModelRegistry
from engine.zoo.download import DownloadError, get, load_catalog, remove

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
DNCNN = SHARED_MODELS / "dncnn_25.pth"
pytestmark = [pytest.mark.skipif(not DNCNN.is_file(), reason=f"real checkpoints not found in {SHARED_MODELS}"),
              pytest.mark.usefixtures("zoo_extra")]


class Mirror(BaseHTTPRequestHandler):
    """Serves files by path with range requests; `cut` paths send only their first N bytes once."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    ranges: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            self.ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        limit = self.cut.pop(self.path, None)
        self.wfile.write(body[start:] if limit is None else body[start:limit])
        if limit is not None:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror():
    data = DNCNN.read_bytes()
    Mirror.files = {"/dncnn_25.pth": data, "/short.pth": data[: len(data) // 2]}
    Mirror.cut, Mirror.ranges = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    # shutdown() waits for the serving loop's next poll: 0.5 s by default, per test
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def catalogue(tmp_path: Path, base: str, path: str = "/dncnn_25.pth", sha: str | None = None,
              commercial: bool = True) -> Path:
    data = DNCNN.read_bytes()
    entry = {"architecture": "DnCNN", "purpose": "denoise", "scale": 1, "license": "MIT",
             "commercial": commercial, "homepage": "https://example.org/dncnn",
             "file": {"url": base + path, "suffix": ".pth", "size": len(data),
                      "sha256": sha or hashlib.sha256(data).hexdigest()}}
    out = tmp_path / "catalog.json"
    out.write_text(json.dumps({"format": "sfumato-catalog-v1", "models": {"dncnn": entry}}))
    return out


@pytest.fixture
def models(tmp_path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def test_get_installs_a_verified_model(tmp_path, models, mirror):
    seen = []
    path = get(models, "dncnn", load_catalog(catalogue(tmp_path, mirror)), progress=lambda d, t: seen.append(d))
    assert path.read_bytes() == DNCNN.read_bytes() and seen[-1] == DNCNN.stat().st_size
    assert sorted(p.name for p in models.iterdir()) == ["dncnn.json", "dncnn.pth"]
    (entry,) = ModelRegistry(models).list()
    assert entry["architecture"] == "DnCNN" and entry["license"] == "MIT"
    remove(models, "dncnn")
    assert list(models.iterdir()) == []


@pytest.mark.parametrize("case, says", [
    ("hash", "sha256 differs"),
    ("truncated", "bytes instead of"),
    ("unknown", "not in the catalogue"),
    ("down", "download failed"),
    ("licence", "--accept-license"),
])
def test_failures_are_clear_and_leave_the_folder_unchanged(tmp_path, models, mirror, case, says):
    base = f"http://127.0.0.1:{free_port()}" if case == "down" else mirror
    cat = load_catalog(catalogue(tmp_path, base, "/short.pth" if case == "truncated" else "/dncnn_25.pth",
                                 sha="0" * 64 if case == "hash" else None, commercial=case != "licence"))
    with pytest.raises(DownloadError, match=says):
        get(models, "nope" if case == "unknown" else "dncnn", cat)
    assert list(models.iterdir()) == []


def test_a_non_commercial_licence_installs_once_accepted(tmp_path, models, mirror):
    cat = load_catalog(catalogue(tmp_path, mirror, commercial=False))
    assert get(models, "dncnn", cat, accept_license=True).is_file()


def test_an_interrupted_download_resumes(tmp_path, models, mirror):
    cat = load_catalog(catalogue(tmp_path, mirror))
    Mirror.cut["/dncnn_25.pth"] = 1_000_000
    with pytest.raises(DownloadError, match="1000000 of .* bytes kept, run the command again to resume"):
        get(models, "dncnn", cat)
    assert [p.name for p in models.iterdir()] == [".downloads"] and not ModelRegistry(models).list()
    path = get(models, "dncnn", cat)
    assert Mirror.ranges == ["bytes=1000000-"] and path.read_bytes() == DNCNN.read_bytes()
    assert sorted(p.name for p in models.iterdir()) == ["dncnn.json", "dncnn.pth"]


def test_cli_get_and_rm(tmp_path, models, mirror, capsys):
    from engine.cli import main
    cat = catalogue(tmp_path, mirror)
    assert main(["models", "get", "dncnn", "--catalog", str(cat), "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert "licence: MIT" in out and "installed dncnn" in out
    assert main(["models", "get", "dncnn", "--catalog", str(cat), "--models", str(models)]) == 1
    assert "already installed" in capsys.readouterr().err
    assert main(["models", "rm", "dncnn", "--models", str(models)]) == 0
    assert list(models.iterdir()) == []


def test_the_shipped_catalogue_is_valid():
    cat = load_catalog()
    assert cat["realesrgan-x4plus"]["file"]["size"] == 67040989
