"""One subcommand per operation, derived from its declaration (the schema `welcome` publishes).

An op's first input, when required, is a positional file; its other inputs are `--NAME FILE`
options (one-channel inputs are read as masks). A `size` rule's two parameters are one
`--size WxH`; every other parameter is an option with the declared type, choices, range,
default and doc. An input that a `require` rule lets a model parameter stand in for also
takes that model's name (`stylize --style NAME`). So a new operation, or a new parameter,
appears on the command line without touching this file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from .common import ProgressBar, add_engine_options, fail, load_image, output_paths, save_image

NULL = object()  # "auto"/"none"/"null" on the command line for a nullable parameter
NULL_WORDS = ("auto", "none", "null")


def _size_rule(schema: dict) -> dict | None:
    return next((r for r in schema.get("rules", []) if r["kind"] == "size"), None)


def _stand_ins(schema: dict) -> dict[str, str]:
    """input name -> model parameter that a `require` rule accepts instead of it."""
    out: dict[str, str] = {}
    for rule in schema.get("rules", []):
        refs = rule["of"] if rule["kind"] == "require" and not rule["when"] else []
        ins = [r[7:] for r in refs if r.startswith("inputs.")]
        models = [r[7:] for r in refs if r.startswith("params.") and schema["params"][r[7:]]["type"] == "model"]
        if len(ins) == 1 and len(models) == 1:
            out[ins[0]] = models[0]
    return out


def _parser_for(name: str, spec: dict) -> Callable[[str], Any]:
    """argparse `type` for one parameter: its declared type, and null words where nullable."""
    kind, choices = spec["type"], spec.get("choices") or []
    base: Callable[[str], Any] = {"int": int, "float": float}.get(kind, str)
    if kind == "enum" and choices and all(isinstance(c, int) for c in choices):
        base = int

    def parse(text: str) -> Any:
        if spec.get("nullable") and text.lower() in NULL_WORDS:
            return NULL
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None

    parse.__name__ = kind
    return parse


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _param_help(spec: dict) -> str:
    """The declared doc, then range, choices, default (and the engine limit that applies)."""
    notes = []
    if "min" in spec or "max" in spec:
        notes.append(f"range {_show(spec.get('min', ''))}..{_show(spec.get('max', ''))}")
    if spec["type"] == "multi":
        notes.append(f"choices {','.join(map(str, spec['choices']))}")
    if spec["type"] == "model":
        notes.append(f"a {' or '.join(spec['model_kinds'])} model")
    notes.append(f"default: {_show(spec['default'])}")
    return f"{spec.get('doc', '')} ({'; '.join(notes)})".strip().replace("%", "%%")


def _add_param(group: Any, name: str, spec: dict) -> None:
    flag = "--" + name.replace("_", "-")
    if spec["type"] == "bool":
        group.add_argument(flag, dest=f"p_{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=_param_help(spec))
        return
    choices = spec.get("choices") if spec["type"] == "enum" else None
    metavar = {"multi": f"{name.upper()}[,...]", "model": "NAME"}.get(spec["type"], name.upper())
    if choices is not None:
        metavar = "{" + ",".join(map(str, choices)) + "}"
    group.add_argument(flag, dest=f"p_{name}", default=None, type=_parser_for(name, spec), choices=choices,
                       metavar=metavar, help=_param_help(spec))


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 512x512, got {text!r}") from None
    return w, h


def add_op_command(sub: Any, name: str, schema: dict) -> None:
    """The subcommand of one op, from its schema."""
    doc = schema.get("doc", "")
    p = sub.add_parser(name, help=doc.split(";")[0].split(". ")[0], description=doc)
    inputs, params = schema["inputs"], schema["params"]
    stand_ins = _stand_ins(schema)
    names = list(inputs)
    positional = names[0] if names and inputs[names[0]]["required"] else None
    for iname, ispec in inputs.items():
        text = ispec.get("doc", "") + (" (an image file; white or opaque alpha = 255)" if ispec["channels"] == [1]
                                       else " (an image file)")
        if iname in stand_ins:
            text += f"; or the name of a model, as --{stand_ins[iname].replace('_', '-')}"
        if iname == positional:
            p.add_argument(f"i_{iname}", metavar=iname, help=text.replace("%", "%%"))
        else:
            p.add_argument(f"--{iname}", dest=f"i_{iname}", required=ispec["required"], metavar="FILE",
                           help=text.replace("%", "%%"))
    group = p.add_argument_group(f"{name} parameters (defaults from the engine)")
    size = _size_rule(schema)
    pair = (size["width"], size["height"]) if size else ()
    if size:
        w, h = params[pair[0]], params[pair[1]]
        group.add_argument("--size", type=_parse_size, default=None, metavar="WIDTHxHEIGHT",
                           help=f"{w.get('doc', '')} and {h.get('doc', '')}, as WIDTHxHEIGHT; each side "
                                f"{w.get('min')}..{w.get('max')} (default {w['default']}x{h['default']})")
    for pname, spec in params.items():
        if pname not in pair:
            _add_param(group, pname, spec)
    p.add_argument("-o", "--out", required=True, type=Path, help="output image (PNG recommended); variants "
                   "are written next to it as OUT_1, OUT_2, ...")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="any engine parameter, value parsed as JSON if possible (repeatable)")
    p.add_argument("--json", action="store_true", help="print the result's metadata as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine_options(p)

    def run(args: argparse.Namespace) -> int:
        given: dict[str, Any] = {}
        base: dict[str, Any] = {}
        for iname, ispec in inputs.items():
            path = getattr(args, f"i_{iname}")
            if path is None:
                continue
            if iname in stand_ins and not Path(path).is_file():
                base[stand_ins[iname]] = path
            else:
                given[iname] = load_image(path, mask=ispec["channels"] == [1])
        if size and args.size is not None:
            base.update(zip(pair, args.size))
        return run_op(args, name, given, collect_params(args, base))

    p.set_defaults(func=run)


def collect_params(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """Parameters given on the command line (the engine fills in the rest)."""
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
    from ..client import EngineClientError
    from .common import connect

    bar = ProgressBar(op, enabled=False if args.quiet else None)
    try:
        with connect(args) as client:
            client.hello()  # lists the `queue` capability: a busy engine then says how many jobs are ahead
            result = client.run(op, inputs, params, on_progress=bar)
    except EngineClientError as exc:
        bar.close()
        return fail(f"{op} failed: [{exc.code}] {exc.message}" + (f" (field {exc.field})" if exc.field else ""))
    bar.close()
    paths = output_paths(args.out, sorted(result.outputs))
    for oname, path in paths.items():
        save_image(result.outputs[oname], path)
        if not args.json:
            print(f"wrote {path}")
    if not args.json and result.meta.get("summary"):
        print(result.meta["summary"])  # what restore found and did (engine/tasks/restore_report.py)
    if args.json:
        print(json.dumps({"outputs": {n: str(p) for n, p in paths.items()}, "meta": result.meta}, default=str))
    return 0


def add_op_commands(sub: Any) -> None:
    """A subcommand for every operation this build declares (test-only ops excluded)."""
    from ..protocol import Limits
    from ..tasks import OPERATIONS

    for name, op in OPERATIONS.items():
        if not op.test_only:
            add_op_command(sub, name, op.schema(Limits()))
