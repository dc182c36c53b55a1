"""Continue the built-in model for a fixed wall-clock budget, on a GPU when one is lent.

    python tools/train_builtin.py --data ../shared/data/train --out runs/builtin3 --minutes 8
    python tools/train_builtin.py --data ../shared/data/train --out /tmp/t --steps 3 --device cpu  # check on a CPU
    python tools/train_builtin.py --data ../shared/data/train --out runs/wide --channels 48,96,192,192  # a wider network, from scratch

The recipe continues `models/builtin` (see its model card) with what the benchmarks say it
lacks: more inpainting (a larger share of masked samples, 128 px crops so holes have
context; most holes start from their border fill, which the inpaint op refines) while a
quarter of the noise levels stay in the restoration range. On a GPU the
batch is large and batches come from DataLoader workers; the step count is set high and the
time limit ends the run, so the learning rate decays over the steps the budget allows
(estimated from the first 20 steps). Copy OUT's model.safetensors / model.json into
models/builtin only when `python -m bench quality` says it is better.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.diffusion.trainer import TrainConfig, Trainer  # noqa: E402

INPAINT_HEAVY = {"strokes": 0.22, "box": 0.18, "scratches": 0.14, "dots": 0.04, "none": 0.02, "all": 0.40}


def config(args: argparse.Namespace, steps: int, gpu: bool) -> TrainConfig:
    # A new width cannot start from the built-in weights: it trains from scratch.
    architecture = {"channels": [int(c) for c in args.channels.split(",")]} if args.channels else {}
    return TrainConfig(
        folders=[args.data], out=args.out, from_model=None if architecture else args.base,
        architecture=architecture, steps=steps,
        patch=128 if gpu else 64, batch=64 if gpu else 8, lr=2e-4, warmup=50, decay_fraction=0.5, ema=0.999,
        restore_fraction=0.25, prefill_fraction=0.6, colour_fraction=0.5, mask_weights=dict(INPAINT_HEAVY), sample_every=0 if not gpu else 2000,
        checkpoint_every=500 if gpu else 1000, max_minutes=args.minutes, seed=args.seed,
        device="cuda" if gpu else "cpu", workers=min(8, os.cpu_count() or 1) if gpu else 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="training images (never the evaluation sets)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=str(Path(__file__).resolve().parents[1] / "models" / "builtin"))
    ap.add_argument("--channels", help="comma-separated widths of a new network trained from scratch "
                    "(the built-in one is 32,64,128,128); without it, --base is continued")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget for training")
    ap.add_argument("--steps", type=int, help="fixed step count instead of the time-based estimate")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    trainer = Trainer(config(args, args.steps or 10**9, gpu))
    if args.steps is None:  # measure the speed on the first steps, then size the schedule to the budget
        trainer._start_workers()
        timed = []
        for i in range(25):
            if gpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            trainer.losses.append(round(trainer.train_step(), 5))
            if i >= 5:  # the first steps pay for start-up
                timed.append(time.perf_counter() - t0)
        per_step = sum(timed) / len(timed)
        trainer.cfg.steps = max(100, int(args.minutes * 60 * 0.95 / per_step))
        print(f"{per_step * 1e3:.1f} ms per step: {trainer.cfg.steps} steps in {args.minutes} min", flush=True)
    trainer.run()
    print(f"model written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
