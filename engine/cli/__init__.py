"""Command line: sfumato serve | info | models | inpaint | restore | stylize | generate | train | plugins | demo.

The op subcommands (inpaint, restore, stylize, generate, and any op added later) are derived
from the operations' declarations (ops.py); the engine's own commands are functions
registered with @command (commands.py). Op subcommands talk to `--engine ADDR` when given,
otherwise to an engine started in this process.
"""
from __future__ import annotations

import argparse
import logging

from .. import __version__
from . import commands  # noqa: F401 - registers the engine's own subcommands
from .common import COMMANDS, ProgressBar, connect, fail, load_image, output_paths, save_image
from .ops import add_op_commands

__all__ = ["ProgressBar", "build_parser", "connect", "fail", "load_image", "main", "output_paths", "save_image"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfumato", description="Sfumato: a local diffusion engine for image "
                                     "editors (inpainting, restoration, style, generation).")
    parser.add_argument("--version", action="version", version=f"sfumato {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_op_commands(sub)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers and args.command != "serve":
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc), 2)
