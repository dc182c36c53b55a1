"""`python -m bench soak`: many clients against one engine for a long time, on loopback only.

A real engine runs as a subprocess (so its RSS is the engine's alone); N threads each own a
Client and submit a seeded mix of cheap real jobs (echo with a small delay, a 4 MiB echo
through shared memory, small denoise and inpaint jobs, a job cancelled mid-run and one that
fails on purpose) one after the other until the time is up. Every terminal message
(result, error, cancelled) is counted on the wire as it arrives, so a job that never ended
(lost) or ended twice (duplicated) shows even where the Client would hide it. The engine's
RSS is sampled every few seconds; at the end the engine is stopped with SIGTERM and /dev/shm
is searched for segments named after the engine's or this process's pid.

Writes soak.json and soak.md into the report folder; the run fails (exit 1) on a lost or
duplicated job, an unexpected outcome, shared memory left behind or an engine that did not
exit cleanly. RSS flatness is reported, not enforced: a short run has no meaningful slope.
"""
from __future__ import annotations

import json
import os
import re
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgpack
import numpy as np

from engine.client import Client, EngineClientError
from engine.shm import SHM_DIR

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "report"
MAX_CLIENTS = 64  # bounded: the bench must not become a load generator
MAX_SECONDS = 4 * 3600.0
TERMINAL = ("result", "error", "cancelled")
RESULT_WAIT_S = 120.0  # longest a client waits for one job before counting it lost
WARMUP_CAP_S = 120.0  # RSS before this (or a quarter of a short run) is warm-up


@dataclass
class SoakConfig:
    clients: int = 8
    seconds: float = 1800.0
    models: str | None = None  # models folder holding builtin/ (default: the engine's own)
    device: str = "cpu"
    out: str = str(DEFAULT_OUT)
    seed: int = 0
    sample_s: float = 5.0  # RSS sampling period

    def check(self) -> None:
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"--clients must be 1..{MAX_CLIENTS}")
        if not 1.0 <= self.seconds <= MAX_SECONDS:
            raise ValueError(f"the run must last 1 s .. {MAX_SECONDS / 60:.0f} min")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the engine under test -------------------------------------------------------------------
class EngineProcess:
    """`python -m engine.cli serve` on a free loopback port, its log drained in the background."""

    def __init__(self, cfg: SoakConfig):
        cmd = [sys.executable, "-m", "engine.cli", "serve", "--bind", "tcp://127.0.0.1:*", "--device", cfg.device]
        if cfg.models:
            cmd += ["--models", str(cfg.models)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.pid = self.proc.pid
        self.log_lines: list[str] = []
        self.errors_logged = 0
        self.address = self._ready(deadline=time.monotonic() + 120)
        threading.Thread(target=self._drain, daemon=True).start()

    def _ready(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self._keep(line)
            if " ready on " in line:
                return line.split(" ready on ", 1)[1].split()[0]
        self.stop()
        raise RuntimeError("the engine did not print its ready line:\n" + "\n".join(self.log_lines[-20:]))

    def _keep(self, line: str) -> None:
        if " ERROR " in line or line.startswith("Traceback"):
            self.errors_logged += 1
        self.log_lines = (self.log_lines + [line.rstrip()])[-200:]

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._keep(line)

    def rss_mib(self) -> float | None:
        """Resident set size now, in MiB."""
        from .speed import proc_memory_mb

        return proc_memory_mb(self.pid, "VmRSS")

    def stop(self) -> int:
        """SIGTERM (the engine cancels its jobs and exits); its exit code, or -9 if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return -9
        return self.proc.returncode


def shm_left(pids: tuple[int, ...], directory: str = SHM_DIR) -> list[str]:
    """Segments in /dev/shm created by these processes (engine/shm.py tags names with the pid)."""
    tags = "|".join(f"{p:x}" for p in pids)
    pattern = re.compile(rf"sfumato-[a-z]*(?:{tags})-")
    try:
        return sorted(n for n in os.listdir(directory) if pattern.match(n))
    except OSError:
        return []


# ---- clients ----------------------------------------------------------------------------------
class CountingClient(Client):
    """A Client that also counts, per id, the terminal messages arriving on the wire: the
    Client delivers one outcome per job and drops a second one, which the soak must see."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.terminals: Counter[str] = Counter()
        self.shm_results = 0  # results whose arrays came back in shared memory (not frames)
        super().__init__(*args, **kwargs)

    def _receive(self, frames: list) -> None:
        try:
            head = msgpack.unpackb(frames[0].bytes if hasattr(frames[0], "bytes") else frames[0])
            if isinstance(head, dict) and head.get("type") in TERMINAL and isinstance(head.get("id"), str):
                self.terminals[head["id"]] += 1
                outputs = head.get("outputs")
                if isinstance(outputs, dict) and any(isinstance(d, dict) and "shm" in d for d in outputs.values()):
                    self.shm_results += 1
        except ValueError:
            pass  # the Client reports an undecodable message itself
        super()._receive(frames)


@dataclass
class Kind:
    """One kind of job in the mix: how often, what to send, and what a correct outcome is."""

    name: str
    weight: float
    make: Callable[[np.random.Generator], tuple[str, dict, dict]]
    expect: str = "result"  # result | cancelled | error code
    cancel_after: tuple[float, float] | None = None  # seconds after submit, for the cancel kind


def _image(rng: np.random.Generator, side: int, channels: int = 3) -> np.ndarray:
    return rng.integers(0, 256, (side, side, channels), dtype=np.uint8)


def _mask(side: int) -> np.ndarray:
    m = np.zeros((side, side, 1), np.uint8)
    m[side // 4: 3 * side // 4, side // 4: 3 * side // 4] = 255
    return m


MIX = (
    Kind("echo", 0.40, lambda r: ("echo", {"image": _image(r, int(r.integers(16, 65)))}, {"steps": 4, "delay": 0.02})),
    Kind("echo_shm", 0.05, lambda r: ("echo", {"image": _image(r, 1024, 4)}, {"steps": 1})),
    Kind("denoise", 0.20, lambda r: ("restore", {"image": _image(r, 48)}, {"task": "denoise", "sigma": 25.0})),
    Kind("inpaint", 0.20, lambda r: ("inpaint", {"image": _image(r, 48), "mask": _mask(48)},
                                     {"steps": 8, "seed": int(r.integers(1 << 30))})),
    Kind("cancel", 0.10, lambda r: ("echo", {"image": _image(r, 32)}, {"steps": 50, "delay": 5.0}),
         expect="cancelled", cancel_after=(0.01, 0.3)),
    Kind("fail", 0.05, lambda r: ("echo", {"image": _image(r, 16)}, {"fail": "bad_param"}), expect="bad_param"),
)


@dataclass
class ClientLog:
    """What one client saw: its latencies (ok jobs) and outcomes, and the ids it had accepted."""

    index: int
    latencies: list[tuple[str, float]] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    terminals: Counter = field(default_factory=Counter)
    shm_results: int = 0


def _outcome(job: Any, kind: Kind, inputs: dict, op: str) -> str:
    """'ok' when the job ended as this kind should, else a short description of what happened."""
    try:
        res = job.result(timeout=RESULT_WAIT_S)
    except EngineClientError as exc:
        return "ok" if exc.code == kind.expect else f"{kind.name}: {exc.code} {exc.message[:120]}"
    if kind.expect != "result":
        return "ok" if kind.expect == "cancelled" else f"{kind.name}: a result, expected {kind.expect}"
    out, image = res.outputs.get("image"), inputs["image"]
    if out is None or out.shape != image.shape:
        return f"{kind.name}: output {None if out is None else out.shape} for input {image.shape}"
    if op == "echo" and not np.array_equal(out, image):
        return f"{kind.name}: echo changed the pixels"
    return "ok"


def client_loop(address: str, cfg: SoakConfig, index: int, stop_at: float, record: ClientLog) -> None:
    """Submit jobs of the mix one after another until stop_at; each waits for its outcome.
    Each client first goes once through the mix, starting at its own kind (so even a short run
    has every kind early), then draws kinds by their weights."""
    rng = np.random.default_rng([cfg.seed, index])
    weights = np.array([k.weight for k in MIX])
    with CountingClient(address, timeout=60, name=f"soak-{index}") as client:
        client.hello()
        n = 0
        while n < len(MIX) or time.monotonic() < stop_at:
            pick = (index + n) % len(MIX) if n < len(MIX) else int(rng.choice(len(MIX), p=weights / weights.sum()))
            kind = MIX[pick]
            n += 1
            op, inputs, params = kind.make(rng)
            t0 = time.perf_counter()
            try:
                job = client.submit(op, inputs, params)
            except EngineClientError as exc:
                record.outcomes["rejected"] += 1
                record.wrong.append(f"{kind.name}: refused at submit: {exc.code} {exc.message[:120]}")
                continue
            record.accepted.append(job.id)
            if kind.cancel_after:
                time.sleep(float(rng.uniform(*kind.cancel_after)))
                job.cancel()
            verdict = _outcome(job, kind, inputs, op)
            record.outcomes[kind.name if verdict == "ok" else "wrong"] += 1
            if verdict == "ok" and kind.expect == "result":
                record.latencies.append((kind.name, time.perf_counter() - t0))
            elif verdict != "ok":
                record.wrong.append(verdict)
        time.sleep(0.5)  # a late duplicate would arrive now
        record.terminals = Counter(client.terminals)
        record.shm_results = client.shm_results


# ---- figures ----------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def rss_summary(samples: list[tuple[float, float]], seconds: float) -> dict:
    """RSS after warm-up: first sample, mean of the last minute, growth and least-squares slope."""
    warmup = min(WARMUP_CAP_S, seconds / 4)
    after = [(t, r) for t, r in samples if t >= warmup]
    if len(after) < 2:
        return {"warmup_s": warmup, "samples_after_warmup": len(after)}
    t, r = np.array([a[0] for a in after]), np.array([a[1] for a in after])
    last_span = min(60.0, (t[-1] - t[0]) / 4)
    last = float(r[t >= t[-1] - last_span].mean())
    slope = float(np.polyfit(t / 60.0, r, 1)[0])
    return {"warmup_s": warmup, "samples_after_warmup": len(after), "first_after_warmup_mib": round(float(r[0]), 1),
            "last_minute_mean_mib": round(last, 1), "last_span_s": round(last_span, 1),
            "growth_mib": round(last - float(r[0]), 1), "slope_mib_per_min": round(slope, 3),
            "max_mib": round(float(r.max()), 1)}


def summarise(records: list[ClientLog], samples: list[tuple[float, float]], cfg: SoakConfig, wall: float) -> dict:
    accepted = [i for rec in records for i in rec.accepted]
    terminals: Counter[str] = Counter()
    for rec in records:
        terminals.update(rec.terminals)
    per_client = []
    for rec in records:
        lat = [s for _, s in rec.latencies]
        per_client.append({"client": rec.index, "jobs": sum(rec.outcomes.values()), "outcomes": dict(rec.outcomes),
                           **{f"p{q}_ms": None if not lat else round(_pct(lat, q) * 1000, 1) for q in (50, 95, 99)}})
    p50s = [c["p50_ms"] for c in per_client if c["p50_ms"]]
    by_kind: dict[str, list[float]] = {}
    for rec in records:
        for name, s in rec.latencies:
            by_kind.setdefault(name, []).append(s)
    wrong = [w for rec in records for w in rec.wrong]
    return {
        "submitted": len(accepted) + sum(rec.outcomes["rejected"] for rec in records),
        "accepted": len(accepted),
        "terminal_messages": sum(terminals.values()),
        "results_ok": sum(len(rec.latencies) for rec in records),
        "cancelled_ok": sum(rec.outcomes["cancel"] for rec in records),
        "errors_ok": sum(rec.outcomes["fail"] for rec in records),
        "shm_results": sum(rec.shm_results for rec in records),
        "lost": sum(1 for i in accepted if terminals[i] == 0),
        "duplicated": sum(n - 1 for n in terminals.values() if n > 1),
        "wrong": len(wrong),
        "wrong_examples": wrong[:10],
        "jobs_per_s": round(len(accepted) / wall, 2),
        "clients": per_client,
        "fairness_p50_ratio": round(max(p50s) / min(p50s), 2) if p50s else None,
        "latency_by_kind_ms": {k: {f"p{q}": round(_pct(v, q) * 1000, 1) for q in (50, 95, 99)} | {"n": len(v)}
                               for k, v in sorted(by_kind.items())},
        "rss": rss_summary(samples, cfg.seconds),
        "rss_samples": [[round(t, 1), round(r, 1)] for t, r in samples],
    }


def write_markdown(res: dict, path: Path) -> None:
    rss, env = res["rss"], res["environment"]
    lines = [
        "# Soak", "",
        f"`{res['command']}` on {env['cpus']} CPUs (load average at start {env.get('load_average_at_start')}"
        + (f", at end {env['load_average_at_end']}" if "load_average_at_end" in env else "") + f"), {res['when']}.", "",
        f"- jobs accepted {res['accepted']}, terminal messages {res['terminal_messages']}: results {res['results_ok']}, "
        f"cancelled {res['cancelled_ok']}, expected errors {res['errors_ok']}; lost {res['lost']}, duplicated "
        f"{res['duplicated']}, wrong {res['wrong']}; {res['jobs_per_s']} jobs/s",
        f"- fairness (slowest / fastest client p50): {res['fairness_p50_ratio']}",
        f"- engine RSS after {rss['warmup_s']:.0f} s warm-up: {rss.get('first_after_warmup_mib')} MiB, last "
        f"{rss.get('last_span_s')} s {rss.get('last_minute_mean_mib')} MiB (slope {rss.get('slope_mib_per_min')} "
        f"MiB/min, max {rss.get('max_mib')} MiB)",
        f"- results through shared memory {res['shm_results']}; /dev/shm segments left {len(res['shm_left'])}; "
        f"engine exit code {res['engine_exit']}; "
        f"engine log errors {res['engine_errors_logged']}",
        f"- verdict: {'pass' if not res['failures'] else 'FAIL: ' + '; '.join(res['failures'])}", "",
        "| client | jobs | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|",
        *(f"| {c['client']} | {c['jobs']} | {c['p50_ms']} | {c['p95_ms']} | {c['p99_ms']} |" for c in res["clients"]),
        "", "| job kind | n | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|",
        *(f"| {k} | {v['n']} | {v['p50']} | {v['p95']} | {v['p99']} |" for k, v in res["latency_by_kind_ms"].items()),
    ]
    path.write_text("\n".join(lines) + "\n")


# ---- the run ----------------------------------------------------------------------------------
def run_soak(cfg: SoakConfig) -> dict:
    """Run the soak and write soak.json and soak.md into cfg.out; returns the results."""
    cfg.check()
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True), "cpus": os.cpu_count(),
           "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    engine = EngineProcess(cfg)
    log(f"soak: engine pid {engine.pid} on {engine.address}; {cfg.clients} clients for {cfg.seconds:.0f} s")
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    stop_at = t0 + cfg.seconds
    finished = threading.Event()

    def sample() -> None:
        while not finished.is_set():
            rss = engine.rss_mib()
            if rss is not None:
                samples.append((time.monotonic() - t0, rss))
            finished.wait(cfg.sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    records = [ClientLog(i) for i in range(cfg.clients)]
    errors: list[str] = []

    def guarded(i: int) -> None:
        try:
            client_loop(engine.address, cfg, i, stop_at, records[i])
        except Exception as exc:  # a client that dies is a finding, not a crash of the bench
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(i,), name=f"soak-{i}") for i in range(cfg.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    finished.set()
    sampler.join()
    alive = engine.proc.poll() is None
    env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    exit_code = engine.stop()
    res: dict[str, Any] = {
        "command": f"python -m bench soak --clients {cfg.clients} " + (
            f"--minutes {cfg.seconds / 60:g}" if cfg.seconds % 60 == 0 else f"--seconds {cfg.seconds:g}"),
        "config": {k: v for k, v in asdict(cfg).items() if k != "out"}, "environment": env,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "wall_s": round(wall, 1),
        **summarise(records, samples, cfg, wall),
        "shm_left": shm_left((engine.pid, os.getpid())), "engine_exit": exit_code,
        "engine_alive_at_end": alive, "engine_errors_logged": engine.errors_logged, "client_errors": errors,
    }
    res["failures"] = failures(res)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(res, indent=1))
    write_markdown(res, out / "soak.md")
    log(f"soak: {res['accepted']} accepted, lost {res['lost']}, duplicated {res['duplicated']}, wrong {res['wrong']}, "
        f"shm left {len(res['shm_left'])}, RSS slope {res['rss'].get('slope_mib_per_min')} MiB/min; "
        f"{'pass' if not res['failures'] else 'FAIL'}; report in {out / 'soak.md'}")
    return res


def failures(res: dict) -> list[str]:
    """The reasons the run fails, empty when it passes."""
    found = [f"{res[k]} {k}" for k in ("lost", "duplicated", "wrong") if res[k]]
    if res["shm_left"]:
        found.append(f"{len(res['shm_left'])} /dev/shm segments left")
    if not res["engine_alive_at_end"] or res["engine_exit"] != 0:
        found.append(f"engine exit code {res['engine_exit']} (alive at end: {res['engine_alive_at_end']})")
    found += res["client_errors"]
    if not res["accepted"]:
        found.append("no job was accepted")
    return found
