"""Regenerate the old-photo figure in docs/img from a scikit-image sample.

    python docs/img/make_oldphoto.py [--models models] [--out docs/img]

The photo is aged in code (bench/oldphoto_damage.py, seeded): sepia tone, a slight blur,
then scratches, dust and hairs; `restore task=auto` is given only the aged picture and
finds and undoes what it can. The panel captions quote what auto reported. Source:
skimage.data.astronaut() (NASA, public domain); nothing else goes into the figure.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from engine.client import Client
from panels import ROOT, figure_options, grid, label  # docs/img/panels.py, beside this script

sys.path.insert(0, str(ROOT))
from bench import oldphoto_damage as dmg  # noqa: E402

SIDE = 256


def aged(photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the photo in sepia, the same print blurred and damaged)."""
    sepia = dmg.tone(photo, "sepia")
    return sepia, dmg.draw_damage(dmg.blur(sepia, 1.5), seed=3, scratches=3, dust=45, hairs=2).image


def main() -> None:
    from skimage import data

    ap = figure_options(__doc__)
    args = ap.parse_args()
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((SIDE, SIDE), Image.LANCZOS))
    sepia, damaged = aged(photo)
    with Client.in_process(models_dir=args.models, device="auto", timeout=900) as client:
        res = client.run("restore", {"image": damaged}, {"task": "auto", "seed": 0})
    print(res.meta["summary"])
    zoom = (slice(20, 148), slice(64, 192))  # the face, at 2x
    big = lambda a: np.repeat(np.repeat(a[zoom], 2, axis=0), 2, axis=1)  # noqa: E731
    rows = [[label(sepia, "sepia original"), label(damaged, "aged: blur, scratches, dust, hairs"),
             label(res.image, "restore task=auto")],
            [label(big(sepia), "detail"), label(big(damaged), "detail"), label(big(res.image), "detail")]]
    path = Path(args.out) / "oldphoto_auto.png"
    Image.fromarray(grid(rows)).save(path, optimize=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
