"""Speed and memory of large-hole removal, the `removal` section of `python -m bench speed`.

Rows (issue targets on a 2-core CPU): a 512x512 image with a 10 % object-shaped hole at
default settings (under 10 s), 2048x2048 with a 5 % hole (under 60 s), and the peak memory
of one removal at 4096x4096 with a 5 % hole (under 2 GiB). PatchMatch runs on the same
inputs in the same run, as the baseline of every ratio. Peak memory is the VmHWM of a fresh
subprocess that runs one job (`python -m bench.speed_removal probe ...`), so nothing the
benchmark itself holds is counted; its RSS just before the job is reported beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .masks import object_mask

REPO = Path(__file__).resolve().parent.parent
OURS = "Sfumato (ours)"
PEER = "PatchMatch"
# (label, side, hole cover, target) -- the latency rows, then the memory row
LATENCY_CASES = (("512² image, 10 % object hole, default settings", 512, 0.10, 10.0),
                 ("2048² image, 5 % object hole, default settings", 2048, 0.05, 60.0))
MEMORY_CASE = ("peak memory, 4096² image, 5 % object hole", 4096, 0.05, 2048.0)  # MiB
QUICK_SIDE = 128  # quick mode: every row at this size, one run, to check the code paths


def inputs(side: int, cover: float) -> tuple[Any, Any]:
    """The astronaut sample resized to side x side, and a seeded object mask of `cover`."""
    from .speed import test_image

    return test_image(side), object_mask(side, side, 0, 0, cover=cover)


def _time(fn: Any, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def run_latency(ours: Any, quick: bool, repeats: int, params: dict) -> list[dict]:
    """Ours (default settings plus `params`) and PatchMatch on each case; the engine is warm
    from the benchmark's earlier rows or from the first, untimed run of the 512 case."""
    from .speed import _peer

    pm = _peer(PEER)
    rows = []
    for label, side, cover, target in LATENCY_CASES:
        side = QUICK_SIDE if quick else side
        img, mask = inputs(side, cover)
        reps = 1 if quick or side > 512 else repeats
        if side <= 512 and not quick:
            ours.inpaint(img, mask, **params)  # warm-up: model load, allocator
        mine = _time(lambda: ours.inpaint(img, mask, **params), reps)
        row = {"case": label, "size": side, "cover": cover, "target_s": target, "ours_runs_s": mine,
               "ours_s": sorted(mine)[len(mine) // 2], "params": params}
        if pm is not None:
            theirs = _time(lambda: pm(img, mask), reps)
            row.update(peer=PEER, peer_runs_s=theirs, peer_s=sorted(theirs)[len(theirs) // 2])
            row["ours_over_peer"] = row["ours_s"] / row["peer_s"]
        print(f"[removal speed] {label} ({side}²): ours {row['ours_s']:.2f} s"
              + (f", {PEER} {row['peer_s']:.2f} s" if pm else ""), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def peak_memory(method: str, side: int, cover: float, models: str | None, device: str, params: dict,
                timeout: float = 900) -> dict:
    """Spawn the probe for one method; returns its JSON line (peak and pre-job RSS, seconds)."""
    cmd = [sys.executable, "-m", "bench.speed_removal", "probe", "--method", method, "--size", str(side),
           "--cover", str(cover), "--device", device, "--params", json.dumps(params)]
    if models:
        cmd += ["--models", str(models)]
    try:
        proc = subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"probe did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": f"probe exited with {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_memory(quick: bool, models: str | None, device: str, params: dict) -> dict:
    label, side, cover, target = MEMORY_CASE
    side = QUICK_SIDE if quick else side
    out: dict[str, Any] = {"case": label, "size": side, "cover": cover, "target_mb": target}
    out["ours"] = peak_memory("ours", side, cover, models, device, params)
    out["peer"] = peak_memory("patchmatch", side, cover, models, device, {})
    print(f"[removal memory] {side}²: ours {out['ours'].get('peak_rss_mb')} MiB, "
          f"{PEER} {out['peer'].get('peak_rss_mb')} MiB", file=sys.stderr, flush=True)
    return out


def run_removal_speed(ours: Any, quick: bool, repeats: int, models: str | None, device: str,
                      params: dict) -> dict:
    return {"latency": run_latency(ours, quick, repeats, params),
            "memory": run_memory(quick, models, device, params)}


# ---- the probe: one job in a fresh process ------------------------------------------------------
def _probe(args: argparse.Namespace) -> dict:
    from .speed import proc_memory_mb

    img, mask = inputs(args.size, args.cover)
    import os

    if args.method == "ours":
        from .ours import Ours

        with Ours(args.models, args.device) as ours:
            before = proc_memory_mb(os.getpid())
            t0 = time.perf_counter()
            ours.inpaint(img, mask, **json.loads(args.params))
            seconds = time.perf_counter() - t0
    else:
        from .speed import _peer

        fn = _peer(PEER)
        if fn is None:
            raise SystemExit(f"{PEER} is not available")
        before = proc_memory_mb(os.getpid())
        t0 = time.perf_counter()
        fn(img, mask)
        seconds = time.perf_counter() - t0
    return {"method": args.method, "size": args.size, "cover": args.cover, "seconds": round(seconds, 2),
            "rss_before_job_mb": before, "peak_rss_mb": proc_memory_mb(os.getpid())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speed_removal", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("probe", help="run one removal in this process and print its peak RSS as JSON")
    pr.add_argument("--method", choices=("ours", "patchmatch"), required=True)
    pr.add_argument("--size", type=int, default=MEMORY_CASE[1])
    pr.add_argument("--cover", type=float, default=MEMORY_CASE[2])
    pr.add_argument("--models")
    pr.add_argument("--device", default="cpu")
    pr.add_argument("--params", default="{}", help="engine parameters as JSON")
    args = p.parse_args(argv)
    print(json.dumps(_probe(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
