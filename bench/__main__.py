"""python -m bench quality | speed | soak | report  (see docs/performance.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .datasets import DEFAULT_ROOT, DataError

DEFAULT_OUT = Path(__file__).resolve().parent / "report"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(x) for x in _csv(text))
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", metavar="DIR", help="models folder holding builtin/ (default: the repo's models/)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT.name}/ in bench/)")
    p.add_argument("--quick", action="store_true", help="smoke mode: a few images / sizes, one setting each")
    p.add_argument("--ours-params", type=json.loads, default={}, metavar="JSON",
                   help='extra engine parameters per task, e.g. \'{"inpaint": {"steps": 20}}\' '
                        "(tasks: denoise, sr, jpeg, inpaint, removal, outpaint, stylize, texture, pattern)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Sfumato quality and speed benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)

    q = sub.add_parser("quality", help="denoising, super-resolution, inpainting, JPEG, object removal, "
                                       "outpainting, texture, pattern and stylize quality vs peers, and old-photo damage "
                                       "(oldphoto), real-world (clipped, signal-dependent) noise (realnoise)")
    q.add_argument("--data", type=Path, default=DEFAULT_ROOT,
                   help="evaluation data root (CBSD68/, McMaster/, Set5/, BSD100/, sr_lr_bicubic/); "
                        "default ../shared/data/eval beside the checkout; stylize and texture read the "
                        "paintings in style/ beside it")
    q.add_argument("--tasks", type=_csv, default=("denoise", "sr", "inpaint", "jpeg", "removal", "outpaint",
                                                      "texture", "pattern", "stylize"),
                   help="comma list of denoise, sr, inpaint, jpeg, removal, outpaint, texture, pattern, stylize, "
                        "oldphoto, realnoise, zoo (default all but oldphoto, realnoise and zoo)")
    q.add_argument("--limit", type=int, help="use only the first N images of each set")
    q.add_argument("--bm3d-limit", type=int, help="run CBM3D (about 20 s per image) on the first N images only")
    q.add_argument("--bm3d-limit-pg", type=int, help="realnoise: run CBM3D on the first N images at the "
                   "Poisson-Gaussian level (default --bm3d-limit), where ours and CBM3D are closest")
    q.add_argument("--patchmatch-limit", type=int, help="run PatchMatch (seconds per image) on the first N images only "
                        "(inpaint task; removal and outpaint always run it on every image)")
    q.add_argument("--masks", default="all", help="inpainting mask kinds, comma list (default all)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--sweep-steps", type=_ints, default=(2, 4, 8, 16, 32), help="steps for the quality-vs-steps plot")
    q.add_argument("--sweep-images", type=int, default=6, help="images per task in the steps sweep")
    q.add_argument("--no-grids", action="store_true", help="skip the visual grids")
    q.add_argument("--no-local-grids", action="store_true", help="skip the eval-image grids in OUT/local/")
    q.add_argument("--zoo-models", metavar="DIR", help="zoo task: folder of the checkpoints (realesrgan-x4plus."
                   "safetensors, realesr-animevideov3-x4.pth, dncnn_25.pth; default ../shared/models beside the checkout)")
    q.add_argument("--zoo-checkpoints", type=_csv, default=(), metavar="NAMES",
                   help="zoo task: only these checkpoints (comma list of realesrgan-x4plus, realesr-animevideov3-x4, "
                        "dncnn_25; default all)")
    q.add_argument("--zoo-budget", type=float, metavar="MIN", help="zoo task: start no new image after MIN minutes")
    q.add_argument("--zoo-parts", type=_csv, default=(), metavar="PARTS",
                   help="zoo task: denoise, sr or both (default both)")
    q.add_argument("--zoo-resume", action="store_true",
                   help="zoo task: reuse the per-image figures in OUT/zoo_progress.jsonl of an interrupted run")
    _engine_options(q)

    s = sub.add_parser("speed", help="latency, throughput, start-up time and peak memory")
    s.add_argument("--repeats", type=int, default=5, help="timed runs per case (after one warm-up)")
    s.add_argument("--clients", type=_ints, default=(1, 4, 8), help="concurrent clients for throughput")
    s.add_argument("--no-gpu", action="store_true", help="do not add GPU latencies when CUDA is present")
    s.add_argument("--sections", type=_csv, default=("transport", "latency", "throughput", "startup", "removal"),
                   help="comma list of transport, latency, throughput, startup, removal, zoo (default all but "
                        "zoo); a subset replaces only those sections of an existing speed.json")
    s.add_argument("--zoo-models", metavar="DIR", help="zoo section: folder of the Real-ESRGAN checkpoints "
                   "(default ../shared/models beside the checkout)")
    _engine_options(s)

    k = sub.add_parser("soak", help="many clients against one engine subprocess for a long time: lost or "
                                     "duplicated jobs, fairness, RSS over time, /dev/shm left (loopback only)")
    k.add_argument("--clients", type=int, default=8, help="concurrent clients, each with its own connection (default 8)")
    k.add_argument("--minutes", type=float, default=30.0, help="how long clients keep submitting (default 30)")
    k.add_argument("--seconds", type=float, help="the duration in seconds instead (short CI runs)")
    k.add_argument("--seed", type=int, default=0, help="seed of the job mix")
    k.add_argument("--models", metavar="DIR", help="models folder holding builtin/ (default: the engine's own)")
    k.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    k.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder for soak.json and soak.md")

    r = sub.add_parser("report", help="rebuild README.md and plots from the JSON results")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)
    try:
        if args.command == "quality":
            from .masks import parse_kinds
            from .quality import TASKS, QualityConfig, run_quality

            bad = [t for t in args.tasks if t not in TASKS]
            if bad:
                print(f"unknown task(s) {', '.join(bad)}; known: {', '.join(TASKS)}", file=sys.stderr)
                return 2
            try:
                kinds = parse_kinds(args.masks)
            except ValueError as exc:
                print(f"bench: {exc}", file=sys.stderr)
                return 2
            cfg = QualityConfig(data=str(args.data), out=str(args.out), quick=args.quick, tasks=tuple(args.tasks),
                                limit=args.limit, bm3d_limit=args.bm3d_limit, bm3d_limit_pg=args.bm3d_limit_pg,
                                patchmatch_limit=args.patchmatch_limit, models=args.models,
                                device=args.device, seed=args.seed, mask_kinds=kinds,
                                ours_params=args.ours_params, sweep_steps=args.sweep_steps,
                                sweep_images=args.sweep_images, grids=not args.no_grids,
                                local_grids=not args.no_local_grids, zoo_models=args.zoo_models,
                                zoo_checkpoints=tuple(args.zoo_checkpoints), zoo_budget_min=args.zoo_budget,
                                zoo_resume=args.zoo_resume, zoo_parts=tuple(args.zoo_parts))
            run_quality(cfg)
        elif args.command == "speed":
            from .speed import SECTIONS, SpeedConfig, run_speed

            bad = [x for x in args.sections if x not in SECTIONS]
            if bad:
                print(f"unknown section(s) {', '.join(bad)}; known: {', '.join(SECTIONS)}", file=sys.stderr)
                return 2
            cfg = SpeedConfig(out=str(args.out), quick=args.quick, models=args.models, device=args.device,
                              repeats=args.repeats, clients=args.clients, gpu=not args.no_gpu,
                              ours_params=args.ours_params, sections=tuple(args.sections),
                              zoo_models=args.zoo_models)
            run_speed(cfg)
        elif args.command == "soak":
            from .soak import SoakConfig, run_soak

            cfg = SoakConfig(clients=args.clients, seconds=args.seconds or args.minutes * 60, models=args.models,
                             device=args.device, out=str(args.out), seed=args.seed)
            try:
                return 1 if run_soak(cfg)["failures"] else 0
            except ValueError as exc:
                print(f"bench soak: {exc}", file=sys.stderr)
                return 2
        else:
            from .report import write_report

            print(write_report(args.out))
    except DataError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
