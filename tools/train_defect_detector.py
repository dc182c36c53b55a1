"""Train the defect detector (engine/tasks/defect_net.py) on random damage over training photos.

    python tools/train_defect_detector.py --data ../shared/data/train --out runs/defects --minutes 40
    python tools/train_defect_detector.py --data ../shared/data/train --out /tmp/d --steps 3  # a quick check

Each step draws fresh damage (tools/defect_damage.py) over random crops, so the network never
sees the same mark twice and cannot learn the photos. The learning rate falls on a cosine
over the time budget. Checkpoints (fp16 safetensors and a card) are written every few
minutes, so a run that is stopped leaves a usable detector. The last images of --data are
held out: the card records precision and recall on them (damage drawn here, fixed seeds)
and the share of flagged pixels on their undamaged versions.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.diffusion.data import find_images, load_rgb  # noqa: E402
from engine.diffusion.modelfile import write_tensors  # noqa: E402
from engine.tasks.defect_net import WIDTHS, DefectNet, defect_probability, load_detector  # noqa: E402
from tools.defect_damage import damage  # noqa: E402

HELD_OUT = 16  # last images of --data, for the card's figures
CROP = 96  # px: training crops (the network sees ~90 px around a pixel)
CHECKPOINT_SECONDS = 300.0


def crops(photos: list[np.ndarray], rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
    """A batch: damaged crops (n, 3, C, C) in 0..1, truth and loss weight (n, 1, C, C)."""
    imgs, truths, weights = [], [], []
    for _ in range(n):
        p = photos[rng.integers(len(photos))]
        if rng.random() < 0.5:
            p = p[:, ::-1]
        h, w = p.shape[:2]
        y, x = rng.integers(0, h - CROP + 1), rng.integers(0, w - CROP + 1)
        s = damage(np.ascontiguousarray(p[y:y + CROP, x:x + CROP]), rng, side_scale=max(h, w) / CROP)
        imgs.append(s.image)
        truths.append(s.truth)
        weights.append(s.weight)
    img = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0
    return img, torch.from_numpy(np.stack(truths))[:, None].float(), torch.from_numpy(np.stack(weights))[:, None]


def evaluate(net: DefectNet, photos: list[np.ndarray], threshold: float = 0.5) -> dict[str, float]:
    """Pixel precision / recall of damage drawn over held-out photos, and the flagged share of
    their undamaged versions (one fixed seed per photo)."""
    net.eval()
    tp = fp = fn = positives = flagged = total = 0
    for i, p in enumerate(photos):
        rng = np.random.default_rng(1000 + i)
        s = damage(p, rng, side_scale=1.0)
        prob = defect_probability(torch.from_numpy(s.image).permute(2, 0, 1)[None].float() / 255.0, net) > threshold
        near = F.max_pool2d(torch.from_numpy(s.truth.astype(np.float32))[None, None], 3, 1, 1)[0, 0].numpy() > 0
        tp += int((prob & near).sum())
        fp += int((prob & ~near).sum())
        fn += int((s.truth & ~prob).sum())
        positives += int(s.truth.sum())
        clean = defect_probability(torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255.0, net) > threshold
        flagged += int(clean.sum())
        total += clean.size
    net.train()
    precision = tp / max(tp + fp, 1)
    recall = 1.0 - fn / max(positives, 1)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "clean_flagged_percent": round(100 * flagged / total, 4)}


def save(net: DefectNet, out: Path, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_tensors({k: v.half().contiguous() for k, v in net.state_dict().items()}, out / "defect_detector.safetensors")
    (out / "defect_detector.json").write_text(json.dumps(card, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="training photos (never the evaluation sets)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--steps", type=int, help="a fixed step count instead of the time budget")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pos-weight", type=float, default=2.0, help="weight of damaged pixels in the loss")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="continue from these weights (a defect_detector.safetensors)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    files = find_images([args.data])
    photos = [load_rgb(f).permute(1, 2, 0).numpy() for f in files]
    train, held = photos[:-HELD_OUT], photos[-HELD_OUT:]
    net = load_detector(args.init).train() if args.init else DefectNet(WIDTHS)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60.0
    out = Path(args.out)
    start = last_save = time.monotonic()
    step, losses = 0, []
    card = {"widths": list(WIDTHS), "crop": CROP, "batch": args.batch, "lr": args.lr, "pos_weight": args.pos_weight,
            "data": {"folder": Path(args.data).name, "images": len(files), "held_out": HELD_OUT,
                     "terms": "trained on BSDS500 (non-commercial research and education): the weights inherit its terms"}}
    earlier = Path(args.init).with_suffix(".json") if args.init else None
    if earlier is not None and earlier.is_file():  # the training history travels with the weights
        prior = json.loads(earlier.read_text())
        card["continued_from"] = {k: prior[k] for k in ("steps", "minutes", "lr", "pos_weight", "damage", "continued_from")
                                  if k in prior}
    while True:
        elapsed = time.monotonic() - start
        done = step >= args.steps if args.steps else elapsed >= budget
        if done:
            break
        frac = step / args.steps if args.steps else elapsed / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))) * min(1.0, (step + 1) / 50)
        img, truth, weight = crops(train, rng, args.batch)
        logits = net(img)
        w = weight * (1 + (args.pos_weight - 1) * truth)
        loss = (F.binary_cross_entropy_with_logits(logits, truth, reduction="none") * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(f"step {step} {elapsed / 60:.1f} min loss {np.mean(losses[-50:]):.4f}", flush=True)
        if time.monotonic() - last_save > CHECKPOINT_SECONDS:
            save(net, out, {**card, "steps": step, "minutes": round(elapsed / 60, 1)})
            last_save = time.monotonic()
    card.update(steps=step, minutes=round((time.monotonic() - start) / 60, 1),
                final_loss=round(float(np.mean(losses[-100:])), 4), held_out=evaluate(net, held))
    save(net, out, card)
    print(json.dumps(card["held_out"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
