"""Train or fine-tune the denoiser on image folders (EDM recipe, resumable).

Everything needed to continue a run lives in `OUT/train_state/` (safetensors + JSON),
so a run stopped at any point resumes with the same step count.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file

from .data import PatchSampler, find_images, load_rgb, shrink_to
from . import style_bank
from .architectures import BUILTIN
from .denoiser import Denoiser, loss_weight, make_cond
from .masks import DEFAULT_WEIGHTS, random_mask
from .modelfile import CARD, WEIGHTS, load_model, save_model, write_tensors
from .plots import image_grid, line_plot
from .sampling import sample_heun
from ..devices import resolve_device
from ..fills import border_fill

STATE_DIR = "train_state"


@dataclass
class TrainConfig:
    folders: list[str]
    out: str
    from_model: str | None = None
    steps: int = 2000
    patch: int = 64
    batch: int = 16
    lr: float = 2e-4
    warmup: int = 200
    decay_fraction: float = 0.2  # cosine decay to lr/20 over the last part of the run
    ema: float = 0.999
    grad_clip: float = 1.0
    p_mean: float = -1.2
    p_std: float = 1.2
    # Share of samples whose noise level is drawn log-uniformly from the restoration range
    # (about 2.5..60 in 0..255 units) instead of the log-normal: spends more of a small
    # network's capacity where denoising and the restore loops work.
    restore_fraction: float = 0.0
    restore_sigma: tuple[float, float] = (0.02, 0.5)
    # Share of partly masked samples (scratches, strokes, boxes) whose hole starts from the
    # fill of its border (engine.fills.border_fill: tension spline for thin holes, harmonic
    # for deeper ones) instead of the clean pixels, at a noise level drawn log-uniformly from
    # `prefill_sigma`. The inpaint op refines exactly such a fill at a low noise level;
    # trained only on clean-plus-noise holes, the network trusts the fill instead of
    # correcting it from the context.
    prefill_fraction: float = 0.0
    prefill_sigma: tuple[float, float] = (0.03, 0.4)
    # Share of crops whose channels are permuted and whose chroma is scaled by up to
    # `max_saturation` (see data.recolour): more saturated colour than BSDS alone holds.
    colour_fraction: float = 0.0
    max_saturation: float = 2.0
    synthetic: str | None = None  # "dead-leaves"
    dead_leaves_fraction: float = 0.25
    held_out: int = 4  # images kept out of training for the sample grid
    sample_every: int = 500
    checkpoint_every: int = 250
    max_minutes: float | None = None
    fill_minutes: bool = False  # steps are re-planned from the measured speed so training lasts max_minutes
    seed: int = 0
    device: str = "auto"
    workers: int = 0  # DataLoader worker processes making batches; 0 = in the training loop
    mask_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    architecture: dict = field(default_factory=dict)
    max_side: int | None = None  # shrink larger training images to this long side first


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, constant, then cosine decay over the last `decay_fraction` of steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    start = int(cfg.steps * (1 - cfg.decay_fraction))
    if step < start or cfg.decay_fraction <= 0:
        return cfg.lr
    t = min(1.0, (step - start) / max(1, cfg.steps - start))
    floor = cfg.lr / 20
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * t))


class Progress:
    """One-line live progress bar on a terminal; periodic plain lines otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = total, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.t0 = time.perf_counter()
        self.last_print = 0.0

    def update(self, step: int, start_step: int, loss: float) -> None:
        now = time.perf_counter()
        if not self.tty and now - self.last_print < 30 and step < self.total:
            return
        self.last_print = now
        rate = (step - start_step) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        frac = step / self.total
        bar = "#" * int(frac * 30)
        line = (f"[{bar:<30}] {step}/{self.total} loss {loss:.4f} "
                f"{rate:.2f} it/s ETA {eta / 60:.1f} min")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def draw_batch(sampler: PatchSampler, cfg: TrainConfig,
               mask_rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean patches, masks, the starting images the noise is added to, and which samples
    start from a pre-filled hole (see TrainConfig.prefill_fraction)."""
    x0 = sampler.batch(cfg.batch)
    masks = np.stack([random_mask(cfg.patch, cfg.patch, mask_rng, cfg.mask_weights) for _ in range(cfg.batch)])
    start, prefilled = x0, torch.zeros(cfg.batch, dtype=torch.bool)
    if cfg.prefill_fraction > 0:
        for i, m in enumerate(masks):
            hole = m > 0.5
            if hole.any() and not hole.all() and mask_rng.uniform() < cfg.prefill_fraction:
                if start is x0:  # copy only when a sample differs
                    start = x0.clone()
                start[i] = torch.from_numpy(border_fill(x0[i].permute(1, 2, 0).numpy(), hole)).permute(2, 0, 1)
                prefilled[i] = True
    return x0, torch.from_numpy(masks)[:, None], start, prefilled


def log_uniform(n: int, bounds: tuple[float, float], device: torch.device) -> torch.Tensor:
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    return (torch.rand(n, device=device) * (hi - lo) + lo).exp()


class BatchStream(torch.utils.data.IterableDataset):
    """Endless (clean patches, masks) batches. Each DataLoader worker draws from its own
    seeds, derived from the run's seed and the step it (re)started at, so a resumed run does
    not replay the batches it has already seen."""

    def __init__(self, sampler: PatchSampler, cfg: TrainConfig, start_step: int):
        self.sampler, self.cfg, self.start_step = sampler, cfg, start_step

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        self.sampler.rng = np.random.default_rng([self.cfg.seed, self.start_step, wid])
        mask_rng = np.random.default_rng([self.cfg.seed + 1, self.start_step, wid])
        while True:
            yield draw_batch(self.sampler, self.cfg, mask_rng)


class Trainer:
    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print):
        self.cfg, self.log = cfg, log
        self.device = torch.device(resolve_device(cfg.device))
        torch.manual_seed(cfg.seed)
        self.out = Path(cfg.out)
        self.state_dir = self.out / STATE_DIR
        self.data_files = find_images(cfg.folders) if cfg.folders else []
        n_hold = min(cfg.held_out, max(0, len(self.data_files) - 1))
        self.held_files = self.data_files[len(self.data_files) - n_hold:] if n_hold else []
        train_files = self.data_files[: len(self.data_files) - n_hold] if n_hold else self.data_files
        self.train_files = train_files
        images = [shrink_to(load_rgb(p), cfg.max_side) for p in train_files]
        dl = cfg.dead_leaves_fraction if cfg.synthetic == "dead-leaves" else 0.0
        if not images and dl == 0:
            raise ValueError(f"no images found in {cfg.folders}; pass --synthetic dead-leaves or a folder of jpg/png/webp")
        self.sampler = PatchSampler(images, cfg.patch, seed=cfg.seed, dead_leaves_fraction=dl,
                                    colour_fraction=cfg.colour_fraction, max_saturation=cfg.max_saturation)
        self.mask_rng = np.random.default_rng(cfg.seed + 1)
        self.base_card: dict = {}
        if cfg.from_model:
            self.model, self.base_card = load_model(cfg.from_model, self.device)
            self.model.train()
        else:
            self.model = Denoiser.build(BUILTIN, cfg.architecture).to(self.device)
        self.model.to(memory_format=torch.channels_last)  # about 25% faster convolutions on CPU
        self.ema = Denoiser.build(self.model.descriptor.architecture, self.model.config).to(self.device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False).eval()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.step = 0
        self._batches = None
        self.losses: list[float] = []
        self.wall_before = 0.0
        self._resume()

    # ---- persistence -------------------------------------------------------------
    def _resume(self) -> None:
        state_file = self.state_dir / "state.safetensors"
        meta_file = self.state_dir / "state.json"
        if not (state_file.is_file() and meta_file.is_file()):
            return
        meta = json.loads(meta_file.read_text())
        tensors = load_file(str(state_file), device=str(self.device))
        self.model.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        self.ema.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        opt_state = self.opt.state_dict()
        for i, p_state in meta["opt_params"].items():
            opt_state["state"][int(i)] = {
                "step": torch.tensor(float(p_state["step"])),
                "exp_avg": tensors[f"opt.{i}.exp_avg"],
                "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"],
            }
        self.opt.load_state_dict(opt_state)
        self.step = int(meta["step"])
        self.losses = list(meta.get("losses", []))
        self.wall_before = float(meta.get("wall_time_s", 0.0))
        self.sampler.rng = np.random.default_rng(self.cfg.seed + self.step)
        self.mask_rng = np.random.default_rng(self.cfg.seed + 1 + self.step)
        self.log(f"resumed from {state_file} at step {self.step}")

    def save_state(self, wall: float) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.model.net.state_dict().items()}
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in self.ema.net.state_dict().items()})
        opt_params = {}
        for i, s in self.opt.state_dict()["state"].items():
            tensors[f"opt.{i}.exp_avg"] = s["exp_avg"].cpu().contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = s["exp_avg_sq"].cpu().contiguous()
            opt_params[str(i)] = {"step": float(s["step"])}
        write_tensors(tensors, self.state_dir / "state.safetensors")
        meta = {"step": self.step, "losses": self.losses, "wall_time_s": wall, "opt_params": opt_params,
                "config": asdict(self.cfg)}
        (self.state_dir / "state.json").write_text(json.dumps(meta))
        save_model(self.ema, self.out, self.card(wall))

    def card(self, wall: float) -> dict:
        cfg = self.cfg
        recent = self.losses[-200:]
        hw = torch.cuda.get_device_name(0) if self.device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        recipe = {k: v for k, v in asdict(cfg).items() if k not in ("out",)}
        return {
            "name": self.out.name,
            "steps": self.step,
            "wall_time_s": round(wall, 1),
            "hardware": hw,
            "final_loss": float(np.mean(recent)) if recent else None,
            "data": {"folders": [str(f) for f in cfg.folders], "images": len(self.data_files),
                     "held_out": [p.name for p in self.held_files], "synthetic": cfg.synthetic},
            "base_model": self.base_card.get("name") if cfg.from_model else None,
            "base_steps": self.base_card.get("steps") if cfg.from_model else None,
            "recipe": recipe,
            "torch": torch.__version__,
        }

    # ---- training ----------------------------------------------------------------
    def make_batch(self) -> tuple[torch.Tensor, ...]:
        """(clean, mask, start, prefilled) on the training device; see draw_batch."""
        batch = next(self._batches) if self._batches is not None else draw_batch(self.sampler, self.cfg, self.mask_rng)
        x0, mask, start, prefilled = batch
        def image(t: torch.Tensor) -> torch.Tensor:
            return t.contiguous(memory_format=torch.channels_last).to(self.device, non_blocking=True)

        x0_d = image(x0)
        start_d = image(start) if bool(prefilled.any()) else x0_d  # nothing pre-filled: the same tensor
        return x0_d, mask.to(self.device, non_blocking=True), start_d, prefilled.to(self.device, non_blocking=True)

    def _start_workers(self) -> None:
        """With workers > 0, batches are made in background processes while the network trains."""
        if self.cfg.workers <= 0 or self._batches is not None:
            return
        loader = torch.utils.data.DataLoader(BatchStream(self.sampler, self.cfg, self.step), batch_size=None,
                                             num_workers=self.cfg.workers, prefetch_factor=2,
                                             persistent_workers=False, pin_memory=self.device.type == "cuda")
        self._batches = iter(loader)

    def sample_sigma(self, n: int) -> torch.Tensor:
        """EDM's log-normal noise levels, a `restore_fraction` of them log-uniform over `restore_sigma`."""
        cfg = self.cfg
        sigma = (torch.randn(n, device=self.device) * cfg.p_std + cfg.p_mean).exp()
        if cfg.restore_fraction > 0:
            pick = torch.rand(n, device=self.device) < cfg.restore_fraction
            sigma = torch.where(pick, log_uniform(n, cfg.restore_sigma, self.device), sigma)
        return sigma

    def train_step(self) -> float:
        cfg = self.cfg
        x0, mask, start, prefilled = self.make_batch()
        n = x0.shape[0]
        sigma = self.sample_sigma(n)
        if cfg.prefill_fraction > 0:
            sigma = torch.where(prefilled, log_uniform(n, cfg.prefill_sigma, self.device), sigma)
        noisy = start + torch.randn_like(x0) * sigma[:, None, None, None]
        cond = make_cond(x0, mask, x0)
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, cfg)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            denoised = self.model(noisy, sigma, cond)
        w = loss_weight(sigma)[:, None, None, None]
        loss = (w * (denoised.float() - x0) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(cfg.ema, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - decay)
            for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                be.copy_(bm)
        self.step += 1
        return loss.item()

    def write_samples(self) -> Path:
        """Generation from noise (row 1) and inpainting of held-out crops (rows 2-4)."""
        p = self.cfg.patch
        g = torch.Generator(device="cpu").manual_seed(1234)
        n = 6
        sigmas = self.ema.descriptor.sigmas.schedule(12, device=self.device)

        def run(known: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
            x = torch.randn(n, 3, p, p, generator=g).to(self.device) * sigmas[0]
            cond = make_cond(known, mask, x)
            return sample_heun(lambda z, s: self.ema(z, s, cond), x, sigmas)

        rows = [list(run(None, None).cpu())]
        if self.held_files:
            held = PatchSampler([shrink_to(load_rgb(f), self.cfg.max_side) for f in self.held_files], p, seed=99)
            clean = held.batch(n).to(self.device)
            rng = np.random.default_rng(7)
            mask = torch.from_numpy(np.stack([random_mask(p, p, rng, {"box": 1, "strokes": 1}) for _ in range(n)]))[:, None].to(self.device)
            filled = run(clean, mask)
            rows += [list((clean * (1 - mask)).cpu()), list(filled.cpu()), list(clean.cpu())]
        self.out.mkdir(parents=True, exist_ok=True)
        return image_grid(rows, self.out / "samples.png")

    def _replan(self, start: int, elapsed: float, first: float) -> int:
        """Total steps that end training when max_minutes elapse, from the speed of the steps after
        the first (which pays for warm-up); fixed once the last `decay_fraction` of the time has
        begun (the learning-rate decay keeps its plan)."""
        cfg = self.cfg
        total = cfg.max_minutes * 60
        done = self.step - start
        if elapsed >= total * (1 - cfg.decay_fraction) or done < 2:
            return cfg.steps
        rate = (done - 1) / max(elapsed - first, 1e-9)
        cfg.steps = max(self.step + 1, self.step + int((total - elapsed) * rate))
        return cfg.steps

    def run(self) -> Path:
        cfg = self.cfg
        start = self.step
        bar = Progress(cfg.steps)
        first = 0.0  # seconds of the first step
        self.log(f"training {sum(p.numel() for p in self.model.parameters())} parameters on {self.device}, "
                 f"{len(self.data_files)} images, steps {self.step}->{cfg.steps}"
                 + (f" (re-planned to fill {cfg.max_minutes:g} minutes)" if cfg.fill_minutes and cfg.max_minutes else ""))
        if self.held_files:
            self.log("held out for the sample grid (not trained on): " + ", ".join(p.name for p in self.held_files))
        if cfg.from_model and self.train_files:  # a style model: the painter's strokes for stylize
            bank = style_bank.write([load_rgb(p).permute(1, 2, 0).numpy() for p in self.train_files], self.out)
            self.log(f"exemplar bank of {len(self.train_files)} paintings written to {bank}")
        self.model.train()
        self._start_workers()
        t0 = time.perf_counter()  # the time budget is for the steps: writing the bank above is not training
        while self.step < cfg.steps:
            loss = self.train_step()
            self.losses.append(round(loss, 5))
            bar.update(self.step, start, float(np.mean(self.losses[-50:])))
            wall = self.wall_before + time.perf_counter() - t0
            out_of_time = cfg.max_minutes is not None and (time.perf_counter() - t0) > cfg.max_minutes * 60
            first = first if self.step - start > 1 else time.perf_counter() - t0
            if cfg.fill_minutes and cfg.max_minutes:
                bar.total = self._replan(start, time.perf_counter() - t0, first)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                self.save_state(wall)
                line_plot(self.losses, self.out / "loss.png", f"training loss ({self.out.name})")
            if cfg.sample_every and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.write_samples()
            if out_of_time:
                self.log(f"\nstopping at the time limit, step {self.step}")
                break
        bar.close()
        return self.out


def check_out(folder: str | Path, force: bool = False) -> None:
    """Refuse (ValueError) an output folder that would lose a model: `builtin` (the shipped
    model's name) always; a folder holding a finished model (no training state to resume)
    unless `force`."""
    folder = Path(folder)
    if folder.name == "builtin":
        raise ValueError(f"refusing to train into {folder}: 'builtin' is the name of the shipped model; "
                         "choose another name")
    has_model = (folder / WEIGHTS).exists() or (folder / CARD).exists()
    if has_model and not (folder / STATE_DIR / "state.json").is_file() and not force:
        raise ValueError(f"{folder} already holds a model; training would replace it. Choose another --out, "
                         "or pass --force to replace it")


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """Train (or resume, or fine-tune) and return the model folder."""
    return Trainer(cfg, log).run()
