"""Transport benchmark: an RGBA u8 round trip through the engine's echo op vs a plain copy.

    python -m bench.transport [--repeat N] [--write docs/performance.md]

The round trip is client -> engine -> client over a real socket: tcp loopback and ipc with
the arrays as raw frames (copy=False, numpy.frombuffer), the same two with the same-host
shared-memory extension (engine/shm.py), and in-process (inproc://). The baseline is
`ndarray.copy()` of the same bytes in this process (allocation + memcpy), the least any
transport must do once. All transports and the copies are measured interleaved, in one
loop per size, against one shared baseline. Target: the 4096^2 round trip costs at most 3x
that copy.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.client import Client
from engine.server import Engine

SIZES = (512, 2048, 4096)
TARGET_RATIO = 3.0
SECTION = "## Transport"
INTRO = """# Performance

Measured figures for the engine, kept next to the code that produces them. Each section names
the script that regenerates it; numbers depend on the machine, so every table says where it
was measured.
"""
TRANSPORTS = ("tcp loopback", "ipc", "tcp loopback + shm", "ipc + shm", "in-process")


def measure(clients: dict[str, Client], size: int, repeat: int) -> dict[str, dict]:
    """Best and median of `repeat` round trips per transport, interleaved with plain copies
    so that every figure sees the same machine load; one shared copy baseline per size."""
    arr = np.random.default_rng(size).integers(0, 256, (size, size, 4), dtype=np.uint8)
    dst = np.empty_like(arr)
    rt_s: dict[str, list[float]] = {name: [] for name in clients}
    rt_cpu: dict[str, list[float]] = {name: [] for name in clients}
    first: dict[str, float] = {}
    copy_s, copy_cpu, memcpy_s = [], [], []
    for name, client in clients.items():  # first full-size call: connects, allocates, maps
        client.run("echo", {"image": arr[:8, :8]})
        used = _shm_used(client)
        t0 = time.perf_counter()
        out = client.run("echo", {"image": arr}).image
        first[name] = time.perf_counter() - t0
        assert np.array_equal(out, arr), f"{name}: echo changed the pixels"
        if name.endswith("+ shm"):
            assert _shm_used(client) == used + 1, f"{name}: the client did not use shared memory"
        del out
    for _ in range(repeat):
        for name, client in clients.items():
            c0, t0 = time.process_time(), time.perf_counter()
            result = client.run("echo", {"image": arr})
            rt_s[name].append(time.perf_counter() - t0)
            rt_cpu[name].append(time.process_time() - c0)
            del result
            c0, t0 = time.process_time(), time.perf_counter()
            copied = arr.copy()
            copy_s.append(time.perf_counter() - t0)
            copy_cpu.append(time.process_time() - c0)
            del copied
            t0 = time.perf_counter()
            np.copyto(dst, arr)
            memcpy_s.append(time.perf_counter() - t0)
    copy, memcpy, cpu = min(copy_s), min(memcpy_s), statistics.median(copy_cpu)
    return {name: {"size": size, "mb": arr.nbytes / 2**20, "copy_ms": copy * 1e3, "memcpy_ms": memcpy * 1e3,
                   "rt_ms": min(times) * 1e3, "rt_median_ms": statistics.median(times) * 1e3,
                   "first_ms": first[name] * 1e3, "ratio": min(times) / copy,
                   "cpu_ms": statistics.median(rt_cpu[name]) * 1e3, "copy_cpu_ms": cpu * 1e3,
                   "cpu_ratio": statistics.median(rt_cpu[name]) / cpu if cpu > 0 else float("nan")}
            for name, times in rt_s.items()}


def _shm_used(client: Client) -> int:
    return client._shm.used if client._shm is not None else 0


def raw_zmq_round_trip(bind: str, size: int, repeat: int) -> float:
    """Best round trip of the same bytes through bare pyzmq (DEALER -> ROUTER echo thread, copy=False):
    the floor any ZeroMQ transport of this kind can reach, without the engine."""
    import threading

    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(bind)
    address = router.getsockopt(zmq.LAST_ENDPOINT).decode()

    def echo() -> None:
        while True:
            frames = router.recv_multipart(copy=False)
            if len(frames) == 2:
                return
            router.send_multipart(frames, copy=False)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(address)
    arr = np.random.default_rng(size).integers(0, 256, (size, size, 4), dtype=np.uint8)
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        dealer.send_multipart([b"h", arr], copy=False)
        dealer.recv_multipart(copy=False)
        times.append(time.perf_counter() - t0)
    dealer.send(b"stop")
    thread.join(5)
    dealer.close(0)
    router.close(0)
    ctx.term()
    return min(times[1:])


def run(repeat: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {name: [] for name in TRANSPORTS}
    with tempfile.TemporaryDirectory() as tmp:
        tcp = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp, device="cpu").start()
        ipc = Engine(bind=f"ipc://{tmp}/engine.sock", models_dir=tmp, device="cpu").start()
        connect: dict[str, Callable[[], Client]] = {
            "tcp loopback": lambda: Client(tcp.address, timeout=60, shm=False),
            "ipc": lambda: Client(ipc.address, timeout=60, shm=False),
            "tcp loopback + shm": lambda: Client(tcp.address, timeout=60),
            "ipc + shm": lambda: Client(ipc.address, timeout=60),
            # what Client.in_process does: inproc://, same ZeroMQ context
            "in-process": lambda: Client(tcp.inproc_address, timeout=60, context=tcp.context),
        }
        clients = {name: connect[name]() for name in TRANSPORTS}
        try:
            for size in SIZES:
                rows = measure(clients, size, repeat if size >= 2048 else repeat * 4)
                for name in TRANSPORTS:
                    results[name].append(rows[name])
        finally:
            for client in clients.values():
                client.close()
            tcp.stop()
            ipc.stop()
        for name, bind in (("tcp loopback", "tcp://127.0.0.1:*"), ("ipc", f"ipc://{tmp}/raw.sock")):
            for row in results[name]:
                reps = repeat if row["size"] >= 2048 else repeat * 4
                row["zmq_ms"] = raw_zmq_round_trip(bind, row["size"], reps) * 1e3
    return results


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| transport | size | MiB | round trip (ms) | plain copy (ms) | ratio | round trip, median (ms) | "
             "first round trip (ms) | CPU per round trip (ms) | CPU ratio | bare pyzmq round trip (ms) | "
             "memcpy into existing buffer (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            zmq_ms = f"{r['zmq_ms']:.1f}" if "zmq_ms" in r else "n/a"
            lines.append(f"| {name} | {r['size']}² RGBA u8 | {r['mb']:.0f} | {r['rt_ms']:.1f} | {r['copy_ms']:.1f} | "
                         f"{r['ratio']:.2f}x | {r['rt_median_ms']:.1f} | {r['first_ms']:.1f} | {r['cpu_ms']:.1f} | "
                         f"{r['cpu_ratio']:.2f}x | {zmq_ms} | {r['memcpy_ms']:.1f} |")
    return "\n".join(lines)


def section(results: dict[str, list[dict]], repeat: int, load: tuple[float, float]) -> str:
    verdicts = []
    for name, rows in results.items():
        r = next(r for r in rows if r["size"] == 4096)
        ok = "meets" if r["ratio"] <= TARGET_RATIO else "does not meet"
        floor = f"; bare pyzmq alone takes {r['zmq_ms'] / r['copy_ms']:.1f}x" if "zmq_ms" in r else ""
        verdicts.append(f"- {name}: {r['ratio']:.2f}x a plain copy, which {ok} the {TARGET_RATIO:.0f}x target{floor} "
                        f"(CPU time: {r['cpu_ratio']:.2f}x).")
    verdict_text = "\n".join(verdicts)
    return f"""{SECTION}

Regenerate with `python -m bench.transport --write docs/performance.md`. A round trip is one
`echo` job, timed from `client.run` to the returned result array: the client sends the array,
the engine validates it, queues the job, the echo op returns the same array on the worker
thread, and the engine sends it back. The figure includes the msgpack headers and the
`accepted`/`progress` messages. The baseline is `ndarray.copy()` of the same bytes
(allocation plus memcpy); "memcpy into existing buffer" is a copy into memory already
allocated. "Bare pyzmq" is the same bytes bounced through a ROUTER echo thread with no engine
code at all: the floor for a frame transport. Times are the best of {repeat} runs
({repeat * 4} for 512²); every transport and the copies are measured interleaved in one loop
per size, so all of them see the same machine load and share one baseline. The median round
trip and the first full-size round trip of each client (connection, shared-memory segment
creation and mapping included) are shown too. "CPU per round trip" is the process CPU time
of a round trip (median; the client, the engine and ZeroMQ's I/O threads all run in this
process) and "CPU ratio" divides it by the median CPU time of the plain copy. CPU time counts
the work done, not the waiting for a free core, so it changes little with what else the
machine is doing; the wall-clock ratio is the figure the target is about.

Measured on {platform.machine()} with {_cpu_count()} CPU cores, Python {platform.python_version()}, with a
load average of {load[0]:.1f} before and {load[1]:.1f} after the run (other work was running; timings
are noisy, the ratios are the figures to watch).

{table(results)}

4096² (64 MiB) round trip:

{verdict_text}

Reading the figures:

- **tcp loopback and ipc with frames** (plain-frame clients such as the GIMP and Krita
  plug-ins, and the Python client with `shm=False`) cross the kernel: each direction copies
  the bytes into a socket buffer and out again into a freshly allocated receive buffer, i.e.
  at least four copies of the payload plus page faults on the receive buffers, however the
  user-space side is written. The engine adds little to bare pyzmq; the gap to the target is
  the socket path itself.
- **+ shm** is the same-host shared-memory extension of protocol v1 (docs/protocol.md), which
  the Python client uses on its own for arrays of 1 MiB and more when the engine offers it.
  The client copies the array into its segment, the engine reads it in place (a read-only
  view, no copy) and copies the result into the region of the segment that the submit
  granted; the client returns a numpy view of that region. Steady state is two memcpys and a
  few small messages. The returned array is ready to use: the client's mapping of the segment
  was populated when the segment was created (`MAP_POPULATE` after `posix_fallocate`), and
  the engine wrote the bytes through its own mapping of the same pages, so reading it costs
  no page faults. The segment is reused from one job to the next, which is what the best and
  median figures measure; the first round trip pays for creating and mapping it. Per-message
  segments would not meet the target: fresh tmpfs pages are allocated and zeroed 4 KiB at a
  time and mapping them costs page-table work per page (together several times a plain copy,
  which gets huge pages from numpy).
- **Wall clock and CPU time.** A round trip wakes a dozen threads in turn (the caller, the
  client's I/O thread, ZeroMQ's I/O threads on both sides, the engine's socket thread and its
  worker), and on a busy machine each wake-up can wait for a free core, which a copy running
  in one thread never does. Where the wall-clock round trip is much longer than its CPU
  time, the difference is that waiting, not work; the CPU ratio is then the better guide to
  what the same round trip costs on an idle machine.
- **In-process** (`Client.in_process`, and every CLI command run without `--engine`) connects
  over `inproc://`: ZeroMQ hands the frames over by reference, so a round trip costs no copy of
  the pixels at all. For small images the fixed cost of four messages and two thread
  hand-offs dominates every transport.
"""


def _cpu_count() -> int:
    return os.cpu_count() or 1


def write(path: Path, text: str) -> None:
    """Replace the Transport section of the report (create the file with an intro if needed)."""
    doc = path.read_text() if path.exists() else INTRO
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text.rstrip() + "\n\n", doc).rstrip() + "\n"
    else:
        doc = doc.rstrip() + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write", type=Path, help="update the Transport section of this Markdown file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = run(args.repeat)
    text = section(results, args.repeat, (load_before, os.getloadavg()[0]))
    print(text)
    if args.write:
        write(args.write, text)
        print(f"updated {args.write}")
    # Success: the transports a same-host client gets by default meet the target.
    best = [next(r for r in results[name] if r["size"] == 4096) for name in ("in-process", "tcp loopback + shm",
                                                                              "ipc + shm")]
    return 0 if all(r["ratio"] <= TARGET_RATIO for r in best) else 1


if __name__ == "__main__":
    raise SystemExit(main())
