"""What every subcommand shares: the command registry, engine connection options, image files
in and out, the progress bar and the one-line failure."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..keys import ENV_CLIENT_KEY, ENV_SERVER_KEY
from ..protocol import QUEUED_STAGE

COMMANDS: list[Callable[[Any], None]] = []


def command(add: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a function that adds one subparser (and sets `func` on it)."""
    COMMANDS.append(add)
    return add


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", metavar="ADDR", help="a running engine (e.g. tcp://127.0.0.1:5555); "
                   "default: start one in this process")
    g.add_argument("--models", metavar="DIR", help="models folder for the in-process engine "
                   "(default: the models shipped with sfumato)")
    g.add_argument("--device", default="auto", help="device of the in-process engine: auto, cpu or cuda")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds without any answer before giving up")
    g.add_argument("--server-key", metavar="FILE", default=os.environ.get(ENV_SERVER_KEY) or None,
                   help=f"an engine served with --keys: its public key file, server.key (or {ENV_SERVER_KEY})")
    g.add_argument("--client-key", metavar="FILE", default=os.environ.get(ENV_CLIENT_KEY) or None,
                   help=f"this client's key pair, NAME.key_secret from `sfumato keys add-client` (or {ENV_CLIENT_KEY})")


@contextmanager
def connect(args: argparse.Namespace) -> Iterator[Any]:
    from ..client import Client

    if args.engine:
        client = Client(args.engine, timeout=args.timeout, name="sfumato-cli", server_key=args.server_key,
                        client_key=args.client_key)
    else:
        client = Client.in_process(models_dir=args.models, device=args.device, timeout=args.timeout)
    try:
        yield client
    finally:
        client.close()


def open_image(path: str, limits: Any = None) -> Any:
    """Open an image file reading only its header, and refuse a size the engine refuses (default
    limits) before any pixel is decoded: a small file can announce gigabytes of pixels."""
    from PIL import Image, UnidentifiedImageError

    from ..protocol import Limits

    limits = limits or Limits()
    pil_check, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the engine's limit, below, replaces it
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file this build can read") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pil_check
    width, height = img.size
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        img.close()
        raise ValueError(f"{path} is {width}x{height} pixels; the engine's limit is {limits.max_pixels} pixels "
                         f"and {limits.max_side} per side")
    return img


def load_image(path: str, mask: bool = False) -> np.ndarray:
    """An image file as a protocol array; masks become [h, w, 1] u8 (alpha if the file has one)."""
    from ..arrays import as_array

    with open_image(path) as img:
        try:
            img.load()
        except OSError as exc:  # truncated or corrupt pixel data
            raise ValueError(f"{path}: cannot decode the image: {exc}") from None
        if mask:
            if img.mode in ("LA", "RGBA") or (img.mode == "P" and "transparency" in img.info):
                grey = img.convert("RGBA").getchannel("A")
            else:
                grey = img.convert("L")
            return np.asarray(grey, dtype=np.uint8)[:, :, None].copy()
        return as_array(img, path)


def save_image(arr: np.ndarray, path: Path) -> None:
    """Write an output array; PNG keeps 16-bit grey, other 16-bit/float data becomes 8-bit."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.dtype == np.float32:
        arr = (np.clip(arr, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if arr.dtype == np.uint16 and arr.shape[2] == 1:
        Image.fromarray(np.ascontiguousarray(arr[:, :, 0])).save(path)
        return
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr))
    img.save(path)


def output_paths(out: Path, names: list[str]) -> dict[str, Path]:
    """'image' -> OUT, 'image_2' -> OUT_2, any other output -> OUT_name."""
    paths = {}
    for name in names:
        if name == "image":
            paths[name] = out
        elif name.startswith("image_"):
            paths[name] = out.with_name(f"{out.stem}_{name[6:]}{out.suffix}")
        else:
            paths[name] = out.with_name(f"{out.stem}_{name}{out.suffix}")
    return paths


class ProgressBar:
    """A one-line bar on a terminal's stderr ("queued, N ahead" while the job waits); silent
    when stderr is not a terminal."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.shown = False

    def __call__(self, event: dict) -> None:
        if self.enabled and event.get("stage") == QUEUED_STAGE:
            sys.stderr.write(f"\r{self.label}: queued, {event.get('ahead', '?')} ahead  ")
            sys.stderr.flush()
            self.shown = True
        if not self.enabled or not event.get("total"):
            return
        step, total = event["step"], event["total"]
        filled = int(30 * step / max(total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * filled:<30}] {step}/{total} {event.get('stage', '')}  ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def fail(message: str, code: int = 1) -> int:
    print(f"sfumato: {message}", file=sys.stderr)
    return code
