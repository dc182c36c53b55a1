"""Score an older engine's object removal with today's bench masks and metrics.

Why: the removal bar ("hole PSNR within 1 dB of today's") refers to the engine before the
synthesis core, measured back then on other images. This runs any checkout of the engine
(e.g. a `git worktree add DIR 765f2b4^`) on the `removal` task's images and masks from this
checkout's bench, and scores its fills with this checkout's metrics, so old and new numbers
compare directly.

    python tools/removal_baseline.py --engine-root DIR --limit 20 --out /tmp/run.npz

The fills run in a subprocess with the old checkout first on the path (its own `engine`
package and, by default, its own models); the results (per-image metrics) are printed and
kept in --out, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's bench (masks, metrics), whatever the working folder

# Runs inside the old checkout: reads the inputs, writes one fill per image (skips done ones).
_FILL = """
import sys, numpy as np
from pathlib import Path
import engine
from engine.client import Client
print('engine from', engine.__file__, flush=True)
job, models, params = sys.argv[1], sys.argv[2], eval(sys.argv[3])
d = np.load(job + '.in.npz')
outdir = Path(job + '.fills'); outdir.mkdir(exist_ok=True)
client = Client.in_process(models_dir=models, device='cpu', timeout=3600.0)
try:
    for i in range(len(d['names'])):
        f = outdir / f'{i:03d}.npy'
        if f.exists():
            continue
        res = client.run('inpaint', {'image': d[f'inp{i}'], 'mask': d[f'mask{i}'][:, :, None]}, params)
        np.save(f, np.asarray(res.outputs['image']))
        print('filled', i, d['names'][i], flush=True)
finally:
    client.close()
"""


def prepare(job: Path, limit: int, seed: int) -> list[dict]:
    """The bench's removal inputs (image with the hole zeroed, mask, truth) for the first images."""
    from bench import masks as masklib
    from bench.datasets import DataRoot
    from bench.quality import hole_input

    items = DataRoot().images("CBSD68", limit)
    arrays: dict[str, np.ndarray] = {"names": np.array([it.name for it in items])}
    for i, it in enumerate(items):
        clean = it.load()
        mask = masklib.make_mask("objects", *clean.shape[:2], i, seed)
        arrays.update({f"inp{i}": hole_input(clean, mask), f"mask{i}": mask, f"clean{i}": clean})
    np.savez(str(job) + ".in.npz", **arrays)
    return [{"name": str(n)} for n in arrays["names"]]


def score(job: Path, seed: int) -> list[dict]:
    from bench.metrics import as_float, patch_distance, psnr, texture_ratio

    d = np.load(str(job) + ".in.npz")
    rows = []
    for i, name in enumerate(d["names"]):
        f = Path(str(job) + ".fills") / f"{i:03d}.npy"
        if not f.exists():
            continue
        out = np.load(f)
        out = out.astype(np.float64) * 255.0 if out.dtype == np.float32 else as_float(out)
        clean, mask = d[f"clean{i}"], d[f"mask{i}"]
        rows.append(dict(name=str(name), psnr=psnr(out, clean, mask), texture_ratio=texture_ratio(out, clean, mask),
                         patch_distance=patch_distance(out, clean, mask, seed=seed * 1000 + i)))
    return rows


def summary(rows: list[dict]) -> str:
    tex = np.array([r["texture_ratio"] for r in rows])
    tex = tex[np.isfinite(tex) & (tex > 0)]
    return (f"{len(rows)} images: texture ratio {np.exp(np.log(tex).mean()):.2f}, patch distance "
            f"{np.mean([r['patch_distance'] for r in rows]):.3f}, hole PSNR {np.mean([r['psnr'] for r in rows]):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine-root", required=True, help="checkout whose engine fills the holes")
    ap.add_argument("--models", help="models folder (default: the engine checkout's models/)")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="the bench's seed (masks and projections)")
    ap.add_argument("--params", default="{'seed': 0}", help="inpaint parameters, a Python dict literal")
    ap.add_argument("--out", required=True, help="job file stem: inputs, fills and scores are kept beside it")
    args = ap.parse_args()
    job = Path(args.out).with_suffix("")
    root = Path(args.engine_root).resolve()
    if not Path(str(job) + ".in.npz").exists():
        prepare(job, args.limit, args.seed)
    env = {**os.environ, "PYTHONPATH": str(root)}
    models = args.models or str(root / "models")
    job = job.resolve()  # the fill runs in the engine checkout (`python -c` puts the working folder first)
    subprocess.run([sys.executable, "-c", _FILL, str(job), models, args.params], env=env, cwd=root, check=True)
    rows = score(job, args.seed)
    Path(str(job) + ".scores.json").write_text(json.dumps(rows, indent=1))
    for r in rows:
        print(f"{r['name']}: psnr {r['psnr']:.2f} texture {r['texture_ratio']:.2f} patch {r['patch_distance']:.3f}")
    print(summary(rows))
    if len(rows) > 6:
        print("first 6 of them:", summary(rows[:6]))


if __name__ == "__main__":
    main()
