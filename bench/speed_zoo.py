"""Speed of zoo checkpoints, the `zoo` section of `python -m bench speed`.

x4 of a 256x256 photo (the astronaut sample) with Real-ESRGAN Compact (target under 5 s on two
idle CPU cores) and Real-ESRGAN x4plus (under 60 s), with Pillow bicubic and the built-in model's
x4 as baselines in the same run, all through the engine (`restore --model NAME`). Each call
records its wall time, the process CPU time it used (the engine runs in this process, so its
threads count) and the load average just before it: on a shared machine wall time follows the
load, CPU time much less so. On an idle machine with T torch threads the wall time lies between
CPU time / T (perfect parallelism) and the CPU time itself. The tile side the engine picks
(engine/tasks/restore_zoo.py tile_side) is recorded with the rows, and the process's peak RSS
(VmHWM) after each row: it only grows, so a row that raises it shows its own peak.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .ours import DEFAULT_MODELS

SIDE = 256
QUICK_SIDE = 64
SCALE = 4
TARGETS = {"realesr-animevideov3-x4": 5.0, "realesrgan-x4plus": 60.0}  # seconds, 2 idle CPU cores
BICUBIC = "Bicubic"
OURS = "Sfumato (ours)"


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def timed_calls(fn: Callable[[], Any], repeats: int) -> list[dict]:
    """Wall and process CPU seconds of each call, with the 1-minute load average before it."""
    runs = []
    for _ in range(repeats):
        load = _load()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append({"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3),
                     "load_1min": load[0] if load else None})
    return runs


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def run_zoo_speed(zoo_models: str | None, models: str | None, device: str, quick: bool, repeats: int) -> dict:
    """The section's rows; {"skipped": reason} when no checkpoint or no engine is available."""
    import torch

    from engine.tasks.restore_zoo import OVERLAP_IN, tile_side
    from engine.tiling import tile_count

    from .ours import OursUnavailable
    from .speed import log, proc_memory_mb, test_image
    from .zoo_task import CHECKPOINTS, DEFAULT_ZOO, ZooEngine, _resize_bicubic

    zoo_dir = Path(zoo_models) if zoo_models else DEFAULT_ZOO
    wanted = [c for c in CHECKPOINTS if c.name in TARGETS]
    present = [c for c in wanted if (zoo_dir / c.file).is_file()]
    missing = [c.file for c in wanted if c not in present]
    if not present:
        return {"skipped": f"no checkpoint of {', '.join(missing)} in the zoo models folder ({zoo_dir.name}/)"}
    if quick:  # smoke mode: the small model only, on a small image
        present = [c for c in present if c.name == "realesr-animevideov3-x4"] or present[:1]
    side = QUICK_SIDE if quick else SIDE
    img = test_image(side)
    try:
        engine = ZooEngine(Path(models) if models else DEFAULT_MODELS, zoo_dir, present, device)
    except (OursUnavailable, OSError) as exc:
        return {"skipped": f"engine: {exc}"}
    ours = engine.ours
    tile = tile_side(device, SCALE, None)
    res: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"), "size": side, "scale": SCALE, "device": device,
                           "torch_threads": torch.get_num_threads(), "load_at_start": _load(),
                           "tile_in": tile, "tiles": tile_count(side, side, tile, OVERLAP_IN),
                           "missing": missing, "rows": []}
    small = test_image(32)
    cases: list[tuple[str, str, str, Callable[[], Any], int]] = [
        (BICUBIC, "peer", "", lambda: _resize_bicubic(img, SCALE), max(3, repeats))]
    if not quick:
        cases.append((OURS, "ours", "", lambda: ours.upscale(img, SCALE), max(1, repeats // 2)))
    for c in present:
        reps = 1 if c.name == "realesrgan-x4plus" and not quick else max(1, repeats)
        cases.append((c.label, "zoo", c.name, lambda n=c.name: ours.upscale(img, SCALE, model=n), reps))
    try:
        for label, kind, name, fn, reps in cases:
            if kind == "ours":
                ours.upscale(small, SCALE)  # warm-up: loads the model
            elif kind == "zoo":
                ours.upscale(small, SCALE, model=name)
            runs = timed_calls(fn, reps)
            row = {"method": label, "kind": kind, "model": name or None, "runs": runs,
                   "wall_s": _median(runs, "wall_s"), "cpu_s": _median(runs, "cpu_s"), "target_s": TARGETS.get(name)}
            if kind == "zoo":
                row["parameters"] = engine.listing.get(name, {}).get("parameters")
            row["peak_rss_mb_after"] = proc_memory_mb(os.getpid())  # VmHWM: grows with the largest call so far
            res["rows"].append(row)
            log(f"[zoo speed] x{SCALE} of {side}²: {label}: wall {row['wall_s']:.2f} s, CPU {row['cpu_s']:.2f} s "
                f"(load {runs[-1]['load_1min']})")
    finally:
        engine.close()
    res["load_at_end"] = _load()
    return res
