"""The engine's own subcommands: serve, keys, info, models, train, plugins, demo."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .. import DEFAULT_ADDRESS, MAX_LOADED_MODELS, __version__
from .. import keys
from .common import add_engine_options, command, connect, fail


# ---- engine commands --------------------------------------------------------------------
@command
def add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the engine")
    p.add_argument("--bind", default=DEFAULT_ADDRESS, help=f"address to serve on (default {DEFAULT_ADDRESS}; "
                   "ipc:///path also works)")
    p.add_argument("--models", metavar="DIR", default=os.environ.get("SFUMATO_MODELS") or None,
                   help="models folder (default: $SFUMATO_MODELS, else the models shipped with sfumato, see "
                   "docs/models.md)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--keys", metavar="DIR", help="serve only the clients authorised in this key folder, through "
                   "CURVE (see `sfumato keys`); required for a non-loopback bind")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without keys: anyone who "
                   "can reach it can use the engine")
    p.add_argument("--max-pixels", type=int, help="pixel cap per array")
    p.add_argument("--max-steps", type=int, help="sampler step cap per job")
    p.add_argument("--max-queue", type=int, help="queued + running jobs per client")
    p.add_argument("--max-models", type=int, default=MAX_LOADED_MODELS,
                   help=f"models kept loaded at once; the least recently used beyond it are unloaded "
                   f"(default {MAX_LOADED_MODELS})")
    p.add_argument("--stop-with", type=int, metavar="PID", help="stop when process PID ends (plug-ins pass "
                   "their editor's id when they start the engine)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    def run(args: argparse.Namespace) -> int:
        from dataclasses import replace

        from ..protocol import Limits
        from ..server import BindRefused, Engine

        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        limits = Limits()
        options = (("max_pixels", "max_pixels"), ("max_steps", "max_steps"), ("max_queue", "max_queue_per_client"))
        for opt, name in options:
            if getattr(args, opt) is not None:
                limits = replace(limits, **{name: getattr(args, opt)})
        try:
            engine = Engine(args.bind, models_dir=args.models, device=args.device, insecure=args.insecure,
                            limits=limits, keys=args.keys, max_models=args.max_models)
        except (BindRefused, ValueError) as exc:
            return fail(str(exc), 2)

        if args.stop_with is not None:
            from ..lifeline import watch

            def host_gone() -> None:
                logging.getLogger("sfumato").info("process %d has ended: stopping", args.stop_with)
                engine.stop()

            watch(args.stop_with, host_gone)

        def ready(address: str) -> None:  # the plug-ins' auto-start waits for " ready on " (sfumato_link.autostart)
            ops = ", ".join(n for n, o in sorted(engine.operations.items()) if not o.test_only) or "none yet"
            models = ", ".join(engine.models.names()) or "none"
            print(f"sfumato {__version__} ready on {address} (device {engine.device}; ops: {ops}; "
                  f"models: {models})", flush=True)
            if engine.curve is not None:
                print(f"clients need {Path(args.keys) / 'server.key'} and a key of {Path(args.keys) / 'clients'} "
                      f"({len(keys.list_clients(args.keys))} authorised now)", flush=True)
            if engine.insecure:
                print(f"sfumato: WARNING: {engine.security()['warning']}", file=sys.stderr, flush=True)

        try:
            engine.serve_forever(on_ready=ready)
        except OSError as exc:
            return fail(str(exc), 2)
        return 0

    p.set_defaults(func=run)


@command
def add_keys(sub: Any) -> None:
    p = sub.add_parser("keys", help="CURVE keys for a remote engine: the engine's pair, authorised clients")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = ksub.add_parser("new", help="write the engine's key pair into DIR (for `serve --keys DIR`)")
    new.add_argument("dir", type=Path)
    new.add_argument("--force", action="store_true", help="replace an existing pair (every client needs the new "
                     "server.key)")
    add = ksub.add_parser("add-client", help="make a client key pair and authorise it")
    add.add_argument("dir", type=Path)
    add.add_argument("name", help="who the key is for (letters, digits, '.', '_', '-')")
    add.add_argument("--out", type=Path, help="where to write the client's pair (default DIR/issued/NAME.key_secret)")
    lst = ksub.add_parser("list", help="the authorised clients")
    lst.add_argument("dir", type=Path)
    rev = ksub.add_parser("revoke", help="remove a client's authorisation (a running engine refuses it from its "
                          "next connection on)")
    rev.add_argument("dir", type=Path)
    rev.add_argument("name")

    def run_new(args: argparse.Namespace) -> int:
        public = keys.new_server(args.dir, force=args.force)
        print(f"engine key pair written to {args.dir}; give every client a copy of {public}")
        return 0

    def run_add(args: argparse.Namespace) -> int:
        authorised, pair = keys.add_client(args.dir, args.name, out=args.out)
        print(f"authorised {args.name} ({authorised}). Give {args.name} these two files, over a safe channel, then "
              f"delete the pair here:\n  {pair}  (--client-key)\n  {args.dir / 'server.key'}  (--server-key)")
        return 0

    def run_list(args: argparse.Namespace) -> int:
        for name, public in keys.list_clients(args.dir).items():
            print(f"{name}  {public}")
        return 0

    def run_revoke(args: argparse.Namespace) -> int:
        print(f"revoked {args.name} (removed {keys.revoke(args.dir, args.name)})")
        return 0

    for q, func in ((new, run_new), (add, run_add), (lst, run_list), (rev, run_revoke)):
        q.set_defaults(func=func)


@command
def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="engine version, device, operations, models and limits")
    p.add_argument("--json", action="store_true", help="the raw welcome message as JSON")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        from ..client import EngineClientError

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
            for rule in schema.get("rules", []):
                fields = ", ".join(rule.get("of") or [rule.get("width", ""), rule.get("height", "")])
                print(f"      rule {rule['kind']} ({fields}){': ' + rule['doc'] if rule.get('doc') else ''}")
        print("models:", ", ".join(m["name"] for m in body["models"]) or "none")
        print("limits:", ", ".join(f"{k}={v}" for k, v in body["limits"].items()))
        return 0

    p.set_defaults(func=run)


@command
def add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list installed models; add or describe a checkpoint file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--refresh", action="store_true", help="re-scan the models folder first")
    add_engine_options(p)
    p.set_defaults(func=_list_models)
    msub = p.add_subparsers(dest="action", metavar="ACTION")
    a = msub.add_parser("add", help="install a checkpoint file (Real-ESRGAN, DnCNN, ...) after detecting it")
    a.add_argument("file", type=Path)
    a.add_argument("--name", help="model name (default: the file name without its suffix)")
    a.add_argument("--license", help="licence to record beside it (shown by models and welcome)")
    a.set_defaults(func=_add_model)
    i = msub.add_parser("info", help="describe an installed checkpoint: architecture, purpose, scale, ...")
    i.add_argument("name")
    i.set_defaults(func=_model_info)
    g = msub.add_parser("get", help="download a model of the catalogue, verify it and install it")
    g.add_argument("name")
    g.add_argument("--catalog", metavar="FILE|URL", help="another catalogue (same format; see docs/models.md)")
    g.add_argument("--accept-license", action="store_true", help="accept a non-commercial licence")
    g.set_defaults(func=_get_model)
    r = msub.add_parser("rm", help="remove an installed checkpoint")
    r.add_argument("name")
    r.set_defaults(func=_rm_model)
    for q in (a, i, g, r):
        q.add_argument("--models", metavar="DIR", help="models folder (default: the models shipped with sfumato)")


def _get_model(args: argparse.Namespace) -> int:
    from ..zoo.backend import ZooUnavailable
    from ..zoo.download import DownloadError, entry_of, get, licence_note, load_catalog
    from .common import ProgressBar

    bar = ProgressBar(f"get {args.name}")
    try:
        catalog = load_catalog(args.catalog)
        print(f"{args.name}: {licence_note(entry_of(catalog, args.name))}", flush=True)
        path = get(_models_dir(args), args.name, catalog, args.accept_license,
                   progress=lambda done, total: bar({"step": done, "total": total, "stage": "download"}))
    except (DownloadError, ZooUnavailable, OSError) as exc:
        return fail(str(exc))
    finally:
        bar.close()
    print(f"installed {args.name} as {path.name}")
    return 0


def _rm_model(args: argparse.Namespace) -> int:
    from ..zoo.download import DownloadError, remove

    try:
        path = remove(_models_dir(args), args.name)
    except DownloadError as exc:
        return fail(str(exc))
    print(f"removed {path.name}")
    return 0


def _models_dir(args: argparse.Namespace) -> Path:
    from ..registry import PACKAGE_MODELS
    return Path(args.models) if args.models else PACKAGE_MODELS


def _add_model(args: argparse.Namespace) -> int:
    from ..zoo.backend import ZooUnavailable
    from ..zoo.checkpoint import CheckpointError
    from ..zoo.manage import add

    try:
        desc = add(_models_dir(args), args.file, args.name, license=args.license)
    except (CheckpointError, ZooUnavailable, OSError) as exc:
        return fail(str(exc))
    print(f"installed {desc['name']}: {desc['architecture']}, {desc['purpose']} x{desc['scale']}, "
          f"{desc['parameters']} parameters")
    return 0


def _model_info(args: argparse.Namespace) -> int:
    from ..zoo.backend import ZooUnavailable
    from ..zoo.checkpoint import CheckpointError
    from ..zoo.manage import info

    try:
        print(json.dumps(info(_models_dir(args), args.name), indent=2))
    except (CheckpointError, ZooUnavailable, OSError) as exc:
        return fail(str(exc))
    return 0


def _list_models(args: argparse.Namespace) -> int:
    from ..client import EngineClientError

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
        if m.get("error"):
            extra = m["error"]
        elif m.get("kind") == "zoo":
            tasks = "; ".join(f"{op}: {', '.join(t)}" for op, t in m["serves"].items()) or "no op uses it yet"
            extra = f"zoo, {m['architecture']} {m['purpose']} x{m['scale']}, {m['parameters']} parameters ({tasks})"
        else:
            extra = f"{m.get('kind', '?')}, {m.get('parameters', '?')} parameters, " \
                    f"{m.get('steps', '?')} steps" + (", loaded" if m.get("loaded") else "")
        print(f"{m['name']}: {extra}")
    return 0


@command
def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model on folders of images")
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="image folders (jpg, png, webp; recursive)")
    p.add_argument("--out", required=True, help="output model folder, e.g. models/mystyle (a folder with a "
                   "training state resumes it)")
    p.add_argument("--force", action="store_true", help="replace the model already in --out")
    p.add_argument("--from", dest="from_model", metavar="MODEL", help="fine-tune from a model: a folder, or "
                   "the name of one in --models (default: the folder --out is in, then the shipped models)")
    p.add_argument("--models", metavar="DIR", help="models folder that --from names are looked up in")
    p.add_argument("--steps", type=int, help="training steps")
    p.add_argument("--patch", type=int, help="patch size in pixels")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--synthetic", choices=["dead-leaves"], help="mix in synthetic dead-leaves images")
    p.add_argument("--minutes", type=float, help="training time: the steps are planned from the measured speed "
                   "so training lasts this long (with --steps: a cap only); resumable")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--sample-every", type=int, help="write a sample grid every N steps (0 = never)")
    p.add_argument("--workers", type=int, help="background processes making batches (default 0: in the "
                   "training loop; 2-4 keep a GPU busy)")

    def run(args: argparse.Namespace) -> int:
        from ..diffusion.recipes import finetune_defaults, model_folders, scratch_defaults
        from ..diffusion.trainer import check_out, train
        from ..errors import EngineError

        if not args.folders and not args.synthetic:
            return fail("give at least one image folder, or --synthetic dead-leaves", 2)
        check_out(args.out, args.force)  # ValueError: main() prints it, status 2
        for folder in args.folders:
            if not Path(folder).exists():
                return fail(f"no such folder: {folder}", 2)
        options = {name: getattr(args, name) for name in ("steps", "patch", "batch", "lr", "seed", "sample_every",
                                                            "workers")}
        options.update(synthetic=args.synthetic, device=args.device, max_minutes=args.minutes,
                       fill_minutes=args.minutes is not None and args.steps is None)
        try:
            if args.from_model:  # fine-tuning: few steps at a low rate (recipes.FINETUNE)
                cfg = finetune_defaults(list(args.folders), args.out, args.from_model,
                                        model_folders(args.out, args.models), **options)
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
        from .. import plugin_install

        plugin_install.install(args.host, dest=args.dest)  # reports what it wrote
        return 0

    inst.set_defaults(func=run)

    zp = psub.add_parser("pack", aliases=["zip"], help="a zip to install from: Krita's Tools > Scripts > Import "
                         "Python Plugin from File, or GIMP's plug-ins folder layout")
    zp.add_argument("host", choices=["gimp", "krita"])
    zp.add_argument("-o", "--out", help="zip file to write (default sfumato-HOST.zip)")

    def run_zip(args: argparse.Namespace) -> int:
        from ..plugin_pack import pack

        pack(args.host, args.out or f"sfumato-{args.host}.zip")
        return 0

    zp.set_defaults(func=run_zip)


@command
def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="one real inpainting request end to end; writes before/after PNGs")
    p.add_argument("--image", help="your own image (default: one generated by the demo)")
    p.add_argument("--out", default="demo", type=Path, help="output folder (default demo/)")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        from ..demo import run_demo

        return run_demo(args)

    p.set_defaults(func=run)
