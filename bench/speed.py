"""`python -m bench speed`: latency, throughput, start-up and memory, with classical ratios.

Latencies are medians of repeated runs after one warm-up run, measured at the client:
they include the protocol, validation, scheduling and compositing a plug-in pays for.
Peers run in the same process right after ours, so a ratio compares like with like on
whatever else the machine is doing. Inputs are made here (scikit-image sample photos
resized), never read from ../shared/data.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from .ours import DEFAULT_MODELS, Ours
from .peers import all_peers

OURS = "Sfumato (ours)"
SECTIONS = ("transport", "latency", "throughput", "startup", "removal", "zoo")
DEFAULT_SECTIONS = SECTIONS[:-1]  # zoo needs other projects' checkpoints: asked for by name
QUICK_SIDE = 128  # quick mode: latency and start-up inputs this size; it checks the code paths, not the figures
REPO = Path(__file__).resolve().parent.parent


@dataclass
class SpeedConfig:
    out: str
    quick: bool = False
    models: str | None = None
    device: str = "cpu"
    repeats: int = 5
    inpaint_sizes: tuple[int, ...] = (256, 512, 1024)
    clients: tuple[int, ...] = (1, 4, 8)
    jobs_per_client: int = 3
    gpu: bool = True  # also measure on CUDA when PyTorch sees a GPU
    ours_params: dict[str, dict] = field(default_factory=dict)
    sections: tuple[str, ...] = SECTIONS  # a subset replaces only those sections of an existing speed.json
    zoo_models: str | None = None  # the zoo section's checkpoints (bench/speed_zoo.py)

    def effective(self) -> "SpeedConfig":
        if not self.quick:
            return self
        return SpeedConfig(self.out, True, self.models, self.device, 1, (QUICK_SIDE,), (1, 4), 1, self.gpu,
                           self.ours_params, self.sections, self.zoo_models)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def test_image(size: int, name: str = "astronaut") -> np.ndarray:
    """A size x size RGB uint8 photo (a scikit-image sample), resized with Lanczos."""
    from skimage import data

    img = getattr(data, name)()[..., :3]
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS))


def centre_mask(size: int) -> np.ndarray:
    """A centred square hole of a quarter of the area: 'remove this object' in a selection."""
    m = np.zeros((size, size), np.uint8)
    q = size // 4
    m[q:size - q, q:size - q] = 255
    return m


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs


def _peer(name: str) -> Callable[..., np.ndarray] | None:
    for p in all_peers():
        if p.name == name and p.available:
            return p.fn
    return None


# ---- latency ------------------------------------------------------------------------------
def latency_cases(ours: Ours, cfg: SpeedConfig) -> list[dict]:
    """Each case: group, size label, method, callable; ours first so ratios can refer to it."""
    cases: list[dict] = []

    def add(group: str, size: str, method: str, kind: str, fn: Callable[[], Any] | None, repeats: int,
            params: dict | None = None) -> None:
        if fn is not None:
            cases.append({"group": group, "size": size, "method": method, "kind": kind, "fn": fn,
                          "repeats": repeats, "params": params or {}})

    p = cfg.ours_params
    for s in cfg.inpaint_sizes:
        img, mask = test_image(s), centre_mask(s)
        reps = cfg.repeats if s <= 512 else max(1, cfg.repeats // 2)
        if ours.has("inpaint"):
            add("inpaint", f"{s}", OURS, "ours", lambda img=img, mask=mask: ours.inpaint(img, mask, **p.get("inpaint", {})),
                reps, p.get("inpaint"))
        for peer in ("OpenCV Telea", "OpenCV NS", "PatchMatch"):
            fn = _peer(peer)
            add("inpaint", f"{s}", peer, "peer", (lambda fn=fn, img=img, mask=mask: fn(img, mask)) if fn else None, reps)
    if not cfg.quick:  # a thin hole takes the full-resolution spline path, not the sampler
        from .masks import make_mask

        img, mask = test_image(512), make_mask("strokes_l", 512, 512)
        if ours.has("inpaint"):
            add("inpaint strokes", "512", OURS, "ours", lambda: ours.inpaint(img, mask, **p.get("inpaint", {})),
                cfg.repeats, p.get("inpaint"))
        for peer in ("OpenCV Telea", "OpenCV NS", "PatchMatch"):
            fn = _peer(peer)
            add("inpaint strokes", "512", peer, "peer", (lambda fn=fn: fn(img, mask)) if fn else None, cfg.repeats)
    side = QUICK_SIDE if cfg.quick else 512
    img = test_image(side)
    rng = np.random.default_rng(0)
    noisy = img.astype(np.float64) + rng.standard_normal(img.shape) * 25
    if ours.has("restore"):
        add("denoise sigma=25", f"{side}", OURS, "ours", lambda: ours.denoise(noisy, 25, **p.get("denoise", {})),
            cfg.repeats, p.get("denoise"))
    nlm = _peer("OpenCV NLM")
    add("denoise sigma=25", f"{side}", "OpenCV NLM", "peer", (lambda: nlm(noisy, 25)) if nlm else None, cfg.repeats)
    bm3d = _peer("CBM3D")
    if not cfg.quick:
        add("denoise sigma=25", f"{side}", "CBM3D", "peer", (lambda: bm3d(noisy, 25)) if bm3d else None, 1)
    for lr_side in ((QUICK_SIDE // 2,) if cfg.quick else (256, 512)):
        lr = test_image(lr_side, "coffee")
        if ours.has("restore"):
            add("upscale x2", f"{lr_side}", OURS, "ours", lambda lr=lr: ours.upscale(lr, 2, **p.get("sr", {})),
                cfg.repeats if lr_side <= 256 else max(1, cfg.repeats // 2), p.get("sr"))
        for peer in ("Bicubic", "Lanczos"):
            fn = _peer(peer)
            add("upscale x2", f"{lr_side}", peer, "peer", (lambda fn=fn, lr=lr: fn(lr, 2)) if fn else None, cfg.repeats)
    if ours.has("stylize"):
        style = test_image(256, "chelsea")
        add("stylize", f"{side}", OURS, "ours", lambda: ours.stylize(img, style, **p.get("stylize", {})),
            max(1, cfg.repeats // 2), p.get("stylize"))
    return cases


def run_latency(ours: Ours, cfg: SpeedConfig, peer_rows: list[dict] | None = None) -> list[dict]:
    """Median latency of every case. With `peer_rows` (a CPU run's rows), only ours is
    timed and its ratios refer to those peers: the GPU run does not re-time CPU peers."""
    rows = []
    cases = latency_cases(ours, cfg)
    if peer_rows is not None:
        cases = [c for c in cases if c["kind"] == "ours"]
    for case in cases:
        med, runs = median_time(case["fn"], case["repeats"])
        row = {k: v for k, v in case.items() if k != "fn"}
        row.update({"median_s": med, "runs_s": [round(r, 4) for r in runs], "device": ours.device})
        rows.append(row)
        log(f"[latency {ours.device}] {case['group']} {case['size']}: {case['method']} {med * 1000:.1f} ms")
    if peer_rows is not None:
        rows += [dict(r, device="cpu") for r in peer_rows if r["kind"] == "peer"]
    for row in rows:  # ratio of ours to each peer of the same case
        mine = next((r for r in rows if r["group"] == row["group"] and r["size"] == row["size"]
                     and r["kind"] == "ours"), None)
        if mine is not None and row["kind"] == "peer" and row["median_s"] > 0:
            row["ours_over_peer"] = mine["median_s"] / row["median_s"]
    return rows


# ---- throughput ----------------------------------------------------------------------------
def run_throughput(ours: Ours, cfg: SpeedConfig) -> list[dict]:
    """N client connections submitting denoise jobs concurrently to one engine."""
    from engine.client import Client

    if not ours.has("restore"):
        return []
    side = 64 if cfg.quick else 256
    img = test_image(side).astype(np.float32) / 255.0
    params = {"task": "denoise", "sigma": 25.0, **cfg.ours_params.get("denoise", {})}
    engine = getattr(ours.client, "engine", None)
    address = engine.address if engine is not None else ours.client.address  # TCP, as plug-ins connect
    ours.client.run("restore", {"image": img}, params)  # warm
    rows = []
    for n in cfg.clients:
        clients = [Client(address, timeout=600) for _ in range(n)]
        lat: list[float] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(c: Client) -> None:
            try:
                for _ in range(cfg.jobs_per_client):
                    t0 = time.perf_counter()
                    c.run("restore", {"image": img}, params)
                    with lock:
                        lat.append(time.perf_counter() - t0)
            except BaseException as exc:  # reported below, after the threads end
                errors.append(exc)

        try:
            for c in clients:  # connect and handshake before the clock starts
                c.hello()
            threads = [threading.Thread(target=work, args=(c,)) for c in clients]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            for c in clients:
                c.close()
        if errors:
            raise errors[0]
        jobs = n * cfg.jobs_per_client
        rows.append({"clients": n, "jobs": jobs, "image": f"{side}x{side} denoise", "seconds": wall,
                     "jobs_per_s": jobs / wall, "latency_median_s": statistics.median(lat),
                     "latency_max_s": max(lat)})
        log(f"[throughput] {n} clients: {jobs / wall:.2f} jobs/s, median latency {statistics.median(lat):.2f} s")
    return rows


# ---- start-up and memory --------------------------------------------------------------------
def proc_memory_mb(pid: int, field: str = "VmHWM") -> float | None:
    """A memory figure of a process from Linux /proc/PID/status, in MiB: VmHWM (peak resident
    set size, the default) or VmRSS (resident now). None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_startup(cfg: SpeedConfig) -> dict:
    """Spawn `python -m engine.cli serve` on a random loopback port; time its ready line,
    the first result (which loads the model), and read its peak RSS after typical jobs."""
    from engine.client import Client

    models = str(cfg.models or DEFAULT_MODELS)
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--bind", "tcp://127.0.0.1:*", "--models", models,
           "--device", cfg.device]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out: dict[str, Any] = {"command": "python -m engine.cli serve --bind tcp://127.0.0.1:* --models DIR"}
    lines: list[str] = []
    try:
        address = None
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if " ready on " in line:
                out["ready_s"] = time.perf_counter() - t0
                address = line.split(" ready on ", 1)[1].split()[0]
                break
        if address is None:
            raise RuntimeError("the engine did not print its ready line; output:\n" + "\n".join(lines[-20:]))
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain logs
        out["rss_ready_mb"] = proc_memory_mb(proc.pid)
        with Client(address, timeout=600) as c:
            t1 = time.perf_counter()
            ops = c.hello().get("ops", {})
            small = test_image(256)
            first = None
            if "restore" in ops:
                first = ("restore", {"image": small}, {"task": "denoise", "sigma": 25.0})
            elif "inpaint" in ops:
                first = ("inpaint", {"image": small, "mask": centre_mask(256)[..., None]}, {"seed": 0})
            if first is not None:
                c.run(*first)
                out["first_result_s"] = time.perf_counter() - t0
                out["first_job_s"] = time.perf_counter() - t1
                out["first_job"] = f"{first[0]} 256"
            side = QUICK_SIDE if cfg.quick else 512
            done = [f"{first[0]} 256"] if first else []
            if "inpaint" in ops:
                c.run("inpaint", {"image": test_image(side), "mask": centre_mask(side)[..., None]}, {"seed": 0})
                done.append(f"inpaint {side}")
            if "restore" in ops:
                c.run("restore", {"image": test_image(side)}, {"task": "upscale", "scale": 2})
                done.append(f"x2 upscale {side}")
            out["rss_after_jobs"] = ", ".join(done) or "no jobs (no ops)"
        out["peak_rss_mb"] = proc_memory_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    out["exit_code"] = proc.returncode
    log(f"[startup] ready in {out.get('ready_s', float('nan')):.2f} s, peak RSS {out.get('peak_rss_mb')} MiB")
    return out


# ---- transport -------------------------------------------------------------------------------
def run_transport(quick: bool) -> dict:
    """The RGBA round trip through the echo op vs a plain copy, measured by bench/transport.py.

    Full mode runs its whole matrix (tcp, ipc, in-process; 512 to 4096 squared); quick mode
    one tcp round trip of 512 and 2048 squared.
    """
    try:
        from . import transport
    except ImportError as exc:
        return {"error": f"bench/transport.py is not available ({exc})"}
    if not quick:
        return {"rows": [{"transport": name, **row} for name, rows in transport.run(7).items() for row in rows]}
    import tempfile

    from engine.client import Client
    from engine.server import Engine

    with tempfile.TemporaryDirectory() as tmp, Engine(bind="tcp://127.0.0.1:*", models_dir=tmp, device="cpu").start() as e, \
            Client(e.address, timeout=60) as client:
        rows = [{"transport": "tcp loopback", **transport.measure({"tcp loopback": client}, size, 1)["tcp loopback"]}
                for size in (512, 2048)]
    return {"rows": rows}


# ---- everything --------------------------------------------------------------------------------
def _environment() -> dict:
    import platform

    import torch

    env = {"python": platform.python_version(), "platform": platform.platform(terse=True),
           "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        env["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _previous(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def run_speed(cfg: SpeedConfig) -> dict:
    """Measure the configured sections; a subset keeps the other sections of an existing speed.json."""
    from . import report
    from .speed_removal import run_removal_speed

    cfg_eff = cfg.effective()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sections = set(cfg.sections)
    meta = {"config": {k: v for k, v in asdict(cfg_eff).items() if k != "out"},
            "environment": _environment(), "when": time.strftime("%Y-%m-%d %H:%M")}
    res: dict[str, Any] = {} if sections >= set(SECTIONS) else _previous(out / "speed.json")
    if sections >= set(DEFAULT_SECTIONS):  # a full run of the default sections: only an earlier zoo section stays
        res = {k: v for k, v in res.items() if k == "zoo"}
    for k, v in meta.items():  # a partial run keeps the header of the run whose sections it keeps
        res.setdefault(k, v)
    if "transport" in sections:
        res["transport"] = run_transport(cfg.quick)
    if sections & {"latency", "throughput", "removal"}:
        with Ours(cfg.models, cfg.device) as ours:
            res["model"] = ours.model_info()
            if "latency" in sections:
                res["latency"] = run_latency(ours, cfg_eff)
            if "throughput" in sections:
                res["throughput"] = run_throughput(ours, cfg_eff)
            if "removal" in sections:
                res["removal"] = run_removal_speed(ours, cfg_eff.quick, cfg_eff.repeats, cfg.models, cfg.device,
                                                   cfg.ours_params.get("removal", {}))
                res["removal"].update(when=meta["when"], load_average=meta["environment"].get("load_average_at_start"))
    if "startup" in sections:
        res["startup"] = run_startup(cfg_eff)
    if "zoo" in sections:
        from .speed_zoo import run_zoo_speed

        res["zoo"] = run_zoo_speed(cfg.zoo_models, cfg.models, cfg.device, cfg_eff.quick, cfg_eff.repeats)
    import torch

    if "latency" in sections and cfg.gpu and cfg.device == "cpu" and torch.cuda.is_available():
        with Ours(cfg.models, "cuda") as ours:
            res["gpu_latency"] = run_latency(ours, cfg_eff, peer_rows=res["latency"])
    res["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "speed.json").write_text(json.dumps(res, indent=1))
    report.write_report(out)
    log(f"speed: done in {res['seconds']} s; report in {out / 'README.md'}")
    return res
