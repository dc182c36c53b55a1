"""Command line: sfumato serve | info | models | inpaint | restore | stylize | generate | train | plugins.

Every subcommand is a function registered with @command; adding one is adding a function.
Op subcommands take their options from the op's parameter schema (engine.tasks), so a new
parameter appears on the command line without touching this file. They talk to
`--engine ADDR` when given, otherwise to an engine started in this process.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__

log = logging.getLogger("sfumato")

COMMANDS: list[Callable[[Any], None]] = []
NULL = object()  # "auto"/"none" on the command line for a nullable parameter


def command(add: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register a function that adds one subparser (and sets `func` on it)."""
    COMMANDS.append(add)
    return add


# ---- shared helpers -----------------------------------------------------------------------
def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", metavar="ADDR", help="a running engine (e.g. tcp://127.0.0.1:5555); "
                   "default: start one in this process")
    g.add_argument("--models", metavar="DIR", help="models folder for the in-process engine "
                   "(default: the models shipped with sfumato)")
    g.add_argument("--device", default="auto", help="device of the in-process engine: auto, cpu or cuda")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds without any answer before giving up")


@contextmanager
def connect(args: argparse.Namespace) -> Iterator[Any]:
    from .client import Client

    if args.engine:
        client = Client(args.engine, timeout=args.timeout, name="sfumato-cli")
    else:
        client = Client.in_process(models_dir=args.models, device=args.device, timeout=args.timeout)
    try:
        yield client
    finally:
        client.close()


def load_image(path: str, mask: bool = False) -> np.ndarray:
    """An image file as a protocol array; masks become [h, w, 1] u8 (alpha if the file has one)."""
    from PIL import Image

    from .client import as_array

    with Image.open(path) as img:
        img.load()
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
    """A one-line bar on a terminal's stderr; silent when stderr is not a terminal."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.shown = False

    def __call__(self, event: dict) -> None:
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


# ---- op subcommands, generated from the op schemas ----------------------------------------
def _param_type(spec: Any) -> Callable[[str], Any]:
    base = {"int": int, "float": float}.get(spec.type, str)

    def parse(text: str) -> Any:
        if spec.nullable and text.lower() in ("auto", "none", "null"):
            return NULL
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{spec.name} must be {spec.type}, got {text!r}") from None

    parse.__name__ = spec.type
    return parse


def add_param_options(p: argparse.ArgumentParser, op_name: str, skip: set[str]) -> list[str]:
    """One option per parameter of the op's schema; returns the parameter names added."""
    from .tasks import OPERATIONS

    op = OPERATIONS.get(op_name)
    if op is None:
        p.epilog = (f"The operation {op_name!r} is not installed in this engine build; "
                    "the engine will answer unknown_op. Pass parameters with --param NAME=VALUE.")
        return []
    group = p.add_argument_group(f"{op_name} parameters (defaults from the engine)")
    names = []
    for spec in op.params:
        if spec.name in skip:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.doc} (default: {spec.default})".strip()
        if spec.type == "bool":
            group.add_argument(flag, dest=f"p_{spec.name}", action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            kwargs: dict[str, Any] = {"dest": f"p_{spec.name}", "default": None, "help": help_text,
                                      "type": _param_type(spec)}
            kwargs["metavar"] = ("{" + ",".join(map(str, spec.choices)) + "}" if spec.choices is not None
                                 else spec.name.upper())
            group.add_argument(flag, **kwargs)
        names.append(spec.name)
    return names


def add_op_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, type=Path, help="output image (PNG recommended); variants "
                   "are written next to it as OUT_1, OUT_2, ...")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="any engine parameter, value parsed as JSON if possible (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result's metadata as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine_options(p)


def collect_params(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    params = dict(base)
    for key, value in vars(args).items():
        if key.startswith("p_") and value is not None:
            params[key[2:]] = None if value is NULL else value
    for item in args.param:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--param needs NAME=VALUE, got {item!r}")
        try:
            params[name] = json.loads(text)
        except json.JSONDecodeError:
            params[name] = text
    return params


def run_op(args: argparse.Namespace, op: str, inputs: dict[str, Any], params: dict[str, Any]) -> int:
    from .client import EngineClientError

    bar = ProgressBar(op, enabled=False if args.quiet else None)
    try:
        with connect(args) as client:
            result = client.run(op, inputs, params, on_progress=bar)
    except EngineClientError as exc:
        bar.close()
        return fail(f"{op} failed: [{exc.code}] {exc.message}" + (f" (field {exc.field})" if exc.field else ""))
    bar.close()
    for name, path in output_paths(args.out, sorted(result.outputs)).items():
        save_image(result.outputs[name], path)
        if not args.json:
            print(f"wrote {path}")
    if args.json:
        print(json.dumps({"outputs": {n: str(p) for n, p in output_paths(args.out, sorted(result.outputs)).items()},
                          "meta": result.meta}, default=str))
    return 0


@command
def add_inpaint(sub: Any) -> None:
    p = sub.add_parser("inpaint", help="fill the masked part of an image")
    p.add_argument("image", help="input image")
    p.add_argument("--mask", required=True, help="mask image: white (or opaque alpha) = regenerate")
    add_param_options(p, "inpaint", skip=set())
    add_op_common(p)

    def run(args: argparse.Namespace) -> int:
        inputs = {"image": load_image(args.image), "mask": load_image(args.mask, mask=True)}
        return run_op(args, "inpaint", inputs, collect_params(args, {}))

    p.set_defaults(func=run)


@command
def add_restore(sub: Any) -> None:
    p = sub.add_parser("restore", help="denoise, remove JPEG artefacts, upscale, deblur or repair")
    p.add_argument("image", help="input image")
    p.add_argument("--task", default="auto", help="comma list of denoise, jpeg, upscale, deblur, repair, or auto")
    p.add_argument("--mask", help="optional mask of the region to restore")
    add_param_options(p, "restore", skip={"task"})
    add_op_common(p)

    def run(args: argparse.Namespace) -> int:
        inputs = {"image": load_image(args.image)}
        if args.mask:
            inputs["mask"] = load_image(args.mask, mask=True)
        return run_op(args, "restore", inputs, collect_params(args, {"task": args.task}))

    p.set_defaults(func=run)


@command
def add_stylize(sub: Any) -> None:
    p = sub.add_parser("stylize", help="re-render an image (or its masked part) in a style")
    p.add_argument("image", help="input image")
    p.add_argument("--style", required=True, help="a reference image file, or the name of a style model")
    p.add_argument("--mask", help="optional mask of the region to stylize")
    add_param_options(p, "stylize", skip=set())
    add_op_common(p)

    def run(args: argparse.Namespace) -> int:
        inputs = {"image": load_image(args.image)}
        base: dict[str, Any] = {}
        if Path(args.style).is_file():
            inputs["style"] = load_image(args.style)
        else:
            base["style_model"] = args.style
        if args.mask:
            inputs["mask"] = load_image(args.mask, mask=True)
        return run_op(args, "stylize", inputs, collect_params(args, base))

    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 512x512, got {text!r}") from None
    return w, h


@command
def add_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="generate new images or seamless patterns")
    p.add_argument("--size", type=parse_size, default=(512, 512), help="WIDTHxHEIGHT (default 512x512)")
    p.add_argument("--reference", help="optional reference image")
    add_param_options(p, "generate", skip={"width", "height"})
    add_op_common(p)

    def run(args: argparse.Namespace) -> int:
        inputs = {"reference": load_image(args.reference)} if args.reference else {}
        w, h = args.size
        return run_op(args, "generate", inputs, collect_params(args, {"width": w, "height": h}))

    p.set_defaults(func=run)


# ---- engine commands --------------------------------------------------------------------
@command
def add_serve(sub: Any) -> None:
    from .client import DEFAULT_ADDRESS as DEFAULT_BIND

    p = sub.add_parser("serve", help="run the engine")
    p.add_argument("--bind", default=DEFAULT_BIND, help=f"address to serve on (default {DEFAULT_BIND}; "
                   "ipc:///path also works)")
    p.add_argument("--models", metavar="DIR", help="models folder (default: the models shipped with sfumato, see docs/models.md)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without authentication")
    p.add_argument("--max-pixels", type=int, help="pixel cap per array")
    p.add_argument("--max-steps", type=int, help="sampler step cap per job")
    p.add_argument("--max-queue", type=int, help="queued + running jobs per client")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    def run(args: argparse.Namespace) -> int:
        from dataclasses import replace

        from .protocol import Limits
        from .server import BindRefused, Engine

        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        limits = Limits()
        options = (("max_pixels", "max_pixels"), ("max_steps", "max_steps"), ("max_queue", "max_queue_per_client"))
        for opt, name in options:
            if getattr(args, opt) is not None:
                limits = replace(limits, **{name: getattr(args, opt)})
        try:
            engine = Engine(args.bind, models_dir=args.models, device=args.device, insecure=args.insecure,
                            limits=limits)
        except (BindRefused, ValueError) as exc:
            return fail(str(exc), 2)

        def ready(address: str) -> None:
            ops = ", ".join(n for n, o in sorted(engine.operations.items()) if not o.test_only) or "none yet"
            models = ", ".join(engine.models.names()) or "none"
            print(f"sfumato {__version__} ready on {address} (device {engine.device}; ops: {ops}; "
                  f"models: {models})", flush=True)

        try:
            engine.serve_forever(on_ready=ready)
        except OSError as exc:
            return fail(str(exc), 2)
        return 0

    p.set_defaults(func=run)


@command
def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="engine version, device, operations, models and limits")
    p.add_argument("--json", action="store_true", help="the raw welcome message as JSON")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        from .client import EngineClientError

        try:
            with connect(args) as client:
                welcome = client.hello()
        except EngineClientError as exc:
            return fail(f"[{exc.code}] {exc.message}")
        body = {k: v for k, v in welcome.items() if k not in ("v", "type", "id")}
        if args.json:
            print(json.dumps(body, indent=2, default=str))
            return 0
        print(f"sfumato engine {body['engine']} (protocol v{body['protocol']}) on {body['device']}")
        print("operations:")
        for name, schema in body["ops"].items():
            mark = " (test only)" if schema.get("test_only") else ""
            print(f"  {name}{mark}: {schema.get('doc', '')}")
            for pname, spec in schema.get("params", {}).items():
                print(f"      {pname} ({spec['type']}, default {spec['default']}): {spec.get('doc', '')}")
        print("models:", ", ".join(m["name"] for m in body["models"]) or "none")
        print("limits:", ", ".join(f"{k}={v}" for k, v in body["limits"].items()))
        return 0

    p.set_defaults(func=run)


@command
def add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list installed models")
    p.add_argument("--json", action="store_true")
    p.add_argument("--refresh", action="store_true", help="re-scan the models folder first")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        from .client import EngineClientError

        try:
            with connect(args) as client:
                models = client.models(refresh=args.refresh)
        except EngineClientError as exc:
            return fail(f"[{exc.code}] {exc.message}")
        if args.json:
            print(json.dumps(models, indent=2, default=str))
        elif not models:
            print("no models installed (put model folders in models/)")
        for m in [] if args.json else models:
            extra = m.get("error") or f"{m.get('kind', '?')}, {m.get('parameters', '?')} parameters, " \
                                      f"{m.get('steps', '?')} steps" + (", loaded" if m.get("loaded") else "")
            print(f"{m['name']}: {extra}")
        return 0

    p.set_defaults(func=run)


@command
def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model on folders of images")
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="image folders (jpg, png, webp; recursive)")
    p.add_argument("--out", required=True, help="output model folder, e.g. models/mystyle")
    p.add_argument("--from", dest="from_model", metavar="MODEL", help="fine-tune from a model (name in "
                   "models/ or a folder)")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--patch", type=int, help="patch size in pixels")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--synthetic", choices=["dead-leaves"], help="mix in synthetic dead-leaves images")
    p.add_argument("--minutes", type=float, help="stop after this many minutes (resumable)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--sample-every", type=int, help="write a sample grid every N steps (0 = never)")
    p.add_argument("--workers", type=int, help="background processes making batches (default 0: in the "
                   "training loop; 2-4 keep a GPU busy)")

    def run(args: argparse.Namespace) -> int:
        from .diffusion.recipes import finetune_defaults, scratch_defaults
        from .diffusion.trainer import train
        from .errors import EngineError

        if not args.folders and not args.synthetic:
            return fail("give at least one image folder, or --synthetic dead-leaves", 2)
        for folder in args.folders:
            if not Path(folder).exists():
                return fail(f"no such folder: {folder}", 2)
        options = {name: getattr(args, name) for name in ("steps", "patch", "batch", "lr", "seed", "sample_every",
                                                            "workers")}
        options.update(synthetic=args.synthetic, device=args.device, max_minutes=args.minutes)
        try:
            if args.from_model:  # fine-tuning: few steps at a low rate (recipes.FINETUNE)
                cfg = finetune_defaults(list(args.folders), args.out, args.from_model, **options)
            else:
                cfg = scratch_defaults(list(args.folders), args.out, **options)
            folder = train(cfg)
        except EngineError as exc:
            return fail(f"[{exc.code}] {exc.message}", 2)
        except (ValueError, FileNotFoundError) as exc:
            return fail(str(exc), 2)
        print(f"model written to {folder}")
        return 0

    p.set_defaults(func=run)


@command
def add_plugins(sub: Any) -> None:
    p = sub.add_parser("plugins", help="install the GIMP or Krita plug-in")
    psub = p.add_subparsers(dest="plugins_command", required=True)
    inst = psub.add_parser("install", help="copy the plug-in into the host application's plug-in folder")
    inst.add_argument("host", choices=["gimp", "krita"])
    inst.add_argument("--dest", help="plug-in folder (default: the host's usual user folder)")

    def run(args: argparse.Namespace) -> int:
        from . import plugin_install

        plugin_install.install(args.host, dest=args.dest)  # reports what it wrote
        return 0

    inst.set_defaults(func=run)

    zp = psub.add_parser("zip", help="pack the Krita plug-in for Tools > Scripts > Import Python Plugin from File")
    zp.add_argument("host", choices=["krita"])
    zp.add_argument("-o", "--out", default="sfumato-krita.zip", help="zip file to write (default sfumato-krita.zip)")

    def run_zip(args: argparse.Namespace) -> int:
        from .plugin_krita import build_zip

        build_zip(args.out)
        return 0

    zp.set_defaults(func=run_zip)


@command
def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="one real inpainting request end to end; writes before/after PNGs")
    p.add_argument("--image", help="your own image (default: one generated by the demo)")
    p.add_argument("--out", default="demo", type=Path, help="output folder (default demo/)")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        return run_demo(args)

    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sfumato", description="Sfumato: a local diffusion engine for image "
                                     "editors (inpainting, restoration, style, generation).")
    parser.add_argument("--version", action="version", version=f"sfumato {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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


if __name__ == "__main__":
    sys.exit(main())
