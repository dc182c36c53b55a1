"""Published results, printed beside ours and always labelled as published.

These numbers were not measured here: they are copied from the papers' tables, which use
the same protocols as bench/quality.py (colour denoising: RGB PSNR of the whole image,
seeded white Gaussian noise, unclipped input; super-resolution: PSNR/SSIM on the BT.601 Y
channel after shaving `scale` pixels, MATLAB-bicubic LR inputs). Small differences in
noise seeds and border handling move such figures by a few hundredths of a dB.
"""
from __future__ import annotations

from dataclasses import dataclass

DPIR = ("Zhang, Li, Zuo, Zhang, Van Gool, Timofte: Plug-and-Play Image Restoration with "
        "Deep Denoiser Prior (DPIR), IEEE TPAMI 2021, table of colour denoising results")
RCAN = ("Zhang, Li, Li, Wang, Zhong, Fu: Image Super-Resolution Using Very Deep Residual "
        "Channel Attention Networks (RCAN), ECCV 2018, table of bicubic-degradation results")
DNCNN = ("Zhang, Zuo, Chen, Meng, Zhang: Beyond a Gaussian Denoiser: Residual Learning of Deep CNN "
         "for Image Denoising (DnCNN), IEEE TIP 2017, table of grey BSD68 results")
SOURCES = {
    "CBM3D": ("Dabov et al., ICIP 2007", DPIR),
    "CDnCNN": ("Zhang et al., IEEE TIP 2017", DPIR),
    "FFDNet": ("Zhang et al., IEEE TIP 2018", DPIR),
    "DRUNet": ("Zhang et al., IEEE TPAMI 2021", DPIR),
    "Bicubic": ("MATLAB imresize", RCAN),
    "SRCNN": ("Dong et al., IEEE TPAMI 2016", RCAN),
    "EDSR": ("Lim et al., CVPRW 2017", RCAN),
    "DnCNN-S": ("Zhang et al., IEEE TIP 2017", DNCNN),
    "BM3D": ("Dabov et al., IEEE TIP 2007", DNCNN),
}


@dataclass(frozen=True)
class PublishedRow:
    """One published figure: method, task, set, setting ('sigma=25', 'x2'), metrics."""

    method: str
    task: str
    dataset: str
    setting: str
    psnr: float
    ssim: float | None = None

    @property
    def source(self) -> str:
        origin, table = SOURCES[self.method]
        return f"{self.method}: {origin}; figures as reported in {table}"


def _denoise() -> list[PublishedRow]:
    table = {  # set -> method -> PSNR at sigma 15, 25, 50
        "CBSD68": {"CBM3D": (33.52, 30.71, 27.38), "CDnCNN": (33.90, 31.24, 27.95),
                   "FFDNet": (33.87, 31.21, 27.96), "DRUNet": (34.30, 31.69, 28.51)},
        "McMaster": {"CBM3D": (34.06, 31.66, 28.51), "CDnCNN": (33.45, 31.52, 28.62),
                     "FFDNet": (34.66, 32.35, 29.18), "DRUNet": (35.40, 33.14, 30.08)},
    }
    rows = []
    for dataset, methods in table.items():
        for method, values in methods.items():
            for sigma, value in zip((15, 25, 50), values):
                rows.append(PublishedRow(method, "denoise", dataset, f"sigma={sigma}", value))
    return rows


def _sr() -> list[PublishedRow]:
    table = {  # (set, scale) -> method -> (Y-PSNR, SSIM)
        ("Set5", 2): {"Bicubic": (33.66, 0.9299), "SRCNN": (36.66, 0.9542), "EDSR": (38.11, 0.9602)},
        ("Set5", 4): {"Bicubic": (28.42, 0.8104), "SRCNN": (30.48, 0.8628), "EDSR": (32.46, 0.8968)},
        ("BSD100", 2): {"Bicubic": (29.56, 0.8431), "SRCNN": (31.36, 0.8879), "EDSR": (32.32, 0.9013)},
        ("BSD100", 4): {"Bicubic": (25.96, 0.6675), "SRCNN": (26.90, 0.7101), "EDSR": (27.71, 0.7420)},
    }
    rows = []
    for (dataset, scale), methods in table.items():
        for method, (p, s) in methods.items():
            rows.append(PublishedRow(method, "sr", dataset, f"x{scale}", p, s))
    return rows


def _grey() -> list[PublishedRow]:
    """Grey denoising on BSD68 (the grey versions of the 68 CBSD68 images the zoo task converts
    itself: not the same files, so a comparison is close, not exact)."""
    return [PublishedRow("DnCNN-S", "zoo", "BSD68 (grey)", "sigma=25", 29.23),
            PublishedRow("BM3D", "zoo", "BSD68 (grey)", "sigma=25", 28.57)]


ROWS: list[PublishedRow] = _denoise() + _sr() + _grey()


def published(task: str, dataset: str, setting: str) -> list[PublishedRow]:
    """Published rows matching one benchmark cell (empty when none exist)."""
    return [r for r in ROWS if r.task == task and r.dataset == dataset and r.setting == setting]
