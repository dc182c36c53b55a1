"""Image bombs through the CLI (issue 18 D10): the size in an image file's header is checked
against the engine's limits before any pixel is decoded, and refused with one line."""
from __future__ import annotations

import struct
import zlib

import pytest

from engine.cli import main
from engine.protocol import Limits


def png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header announces width x height grey pixels, followed by a few bytes of
    pixel data: decoding it would fail as truncated, so a clean refusal proves nothing was decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(20000, 20000), (12000, 12000), (Limits().max_side + 1, 4)])
def test_oversized_image_is_refused_before_decoding(tmp_path, capsys, width, height):
    bomb = tmp_path / "bomb.png"
    png_header_only(bomb, width, height)
    assert main(["restore", str(bomb), "-o", str(tmp_path / "out.png"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfumato: ") and err.count("\n") == 1, err
    assert f"{width}x{height}" in err and "limit" in err, err
    assert not (tmp_path / "out.png").exists()


def test_undecodable_image_is_a_one_line_error(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    png_header_only(broken, 64, 64)
    assert main(["restore", str(broken), "-o", str(tmp_path / "out.png"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfumato: ") and "broken.png" in err and err.count("\n") == 1, err
