"""Host side of the real-GIMP test: engine, test images, plug-in install, GIMP runs, verdict.

Called by tests/hosts/gimp_host_test.sh once GIMP 3 is provisioned (a Debian 13 chroot, or
the system). It first runs GIMP with no engine running, so that the plug-in starts one (the
Python the installer recorded) and that engine must stop when GIMP exits. Then it starts the
real engine in this process on a loopback port (the chroot shares the network), installs the plug-in into a scratch GIMP profile, runs
gimp-console-3.0 with batch_checks.py, kills the plug-in in the middle of a long job the
way GIMP's Cancel does and checks that the engine stopped the job, then (optionally) runs
the GUI under Xvfb for the undo check and the screenshots. Exit status 0 = every check
passed, 1 = a check failed, 2 = could not run.
"""
from __future__ import annotations

import argparse
import logging
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(HERE.parent))

import zoo_compare  # noqa: E402  (tests/hosts/zoo_compare.py)
from engine import plugin_install  # noqa: E402
from engine.server import Engine  # noqa: E402

PROFILE_CACHE = Path(os.environ.get("SFUMATO_HOSTS_DIR", REPO / ".hosts")) / "gimp-profile"
TINY_ARCH = {"channels": [8, 16, 16, 16], "down_blocks": [1, 1, 1, 1], "up_blocks": [1, 1, 1, 1],
             "emb_dim": 32, "groups": 4}


def log(msg: str) -> None:
    print(f"[gimp-host] {msg}", flush=True)


# ---- engine and inputs ----------------------------------------------------------------------

SHIPPED_MODELS = REPO / "models"


def models_dir(hosts: Path) -> Path:
    """A tiny model trained once and cached: the checks are about the plumbing, and a tiny
    network keeps every job short even on a loaded CI machine."""
    cache = hosts / "tiny-models"
    if not (cache / "builtin" / "model.json").is_file():
        from engine.diffusion.trainer import TrainConfig, train

        log("training a tiny model for the host test (cached in .hosts/tiny-models)")
        # a few steps only: the host test checks the plumbing, not the model's quality
        cfg = TrainConfig(folders=[], out=str(cache / "builtin"), steps=12, patch=32, batch=4, lr=1e-3, warmup=2,
                          synthetic="dead-leaves", sample_every=0, checkpoint_every=12,
                          architecture=dict(TINY_ARCH), seed=0)
        train(cfg, log=lambda *_: None)
    return cache


def test_image(path: Path, w: int = 320, h: int = 240) -> None:
    """Generated content: a colour gradient with discs and stripes, so changes are visible."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, (1 - xx / w) * 200 + 30], -1)
    for cx, cy, r, col in ((120, 90, 40, (230, 60, 40)), (230, 150, 55, (40, 90, 220)), (70, 190, 30, (250, 220, 60))):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = col
    img[((xx.astype(int) // 8) % 2 == 0) & (yy > 200)] *= 0.8
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path)


def style_image(path: Path) -> None:
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.zeros((96, 96, 3), np.uint8)
    img[..., 0] = 128 + 100 * np.sin(xx / 3.0)
    img[..., 1] = 128 + 100 * np.sin((xx + yy) / 5.0)
    img[..., 2] = 90
    Image.fromarray(img).save(path)


# ---- running GIMP ----------------------------------------------------------------------------

class Host:
    """Runs commands inside the chroot (or directly), with paths mapped between the two views.
    `version` is the GIMP 3.x found there ("3.0", "3.2"): it names the binaries and the profile folder."""

    def __init__(self, root: Path):
        self.root = root
        self.chroot = root != Path("/")
        found = sorted((root / "usr" / "bin").glob("gimp-console-3.*"))
        self.version = found[-1].name.rsplit("-", 1)[1] if found else "3.0"
        self.console = f"gimp-console-{self.version}"
        self.gui = f"gimp-{self.version}"

    def plugins_folder(self, home: Path) -> Path:
        return home / ".config" / "GIMP" / self.version / "plug-ins"

    def profile_cache(self) -> Path:
        return PROFILE_CACHE.with_name(f"{PROFILE_CACHE.name}-{self.version}")

    def inner(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.root)) if self.chroot else str(path)

    def command(self, argv: list[str], env: dict[str, str]) -> list[str]:
        base = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]
        return (["chroot", str(self.root)] if self.chroot else []) + base


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def plugin_pid(gimp_pid: int) -> int | None:
    """The running sfumato.py process among the GIMP process's descendants (ours only)."""
    for pid in descendants(gimp_pid):
        if "plug-ins/sfumato/sfumato.py" in cmdline(pid):
            return pid
    return None


def engine_idle(engine: Engine, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = engine.scheduler.status()
        if not st["running"] and st["queued"] == 0:
            return True
        time.sleep(0.05)
    return False


def cancel_driver(engine: Engine, work: Path, proc: subprocess.Popen, result: dict) -> None:
    """Wait for the batch script's long job, kill its plug-in process (as GIMP's Cancel does),
    and time how long the engine takes to stop the job."""
    marker = work / "cancel-start"
    while not marker.exists():
        if proc.poll() is not None:
            return
        time.sleep(0.1)
    deadline = time.monotonic() + 120
    while not engine.scheduler.status()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let it make some progress
    pid = plugin_pid(proc.pid)
    if pid is None:
        result["error"] = "no running plug-in process found"
        return
    running = engine.scheduler._running  # the job the plug-in submitted (the harness owns this engine)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    result["killed"] = pid
    if running is not None:  # the plumbing: a cancel must reach the engine at once
        result["cancel_requested"] = running.cancel_event.wait(10)
        result["cancel_request_seconds"] = round(time.monotonic() - t0, 2)
    # the op stops at its next step; on a loaded CPU a step of even a tiny model can take seconds
    result["idle"] = engine_idle(engine, 90)
    result["engine_stop_seconds"] = round(time.monotonic() - t0, 2)


def gimp_env(home: str, cfg: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "SFUMATO_HOST_TEST": cfg, "SFUMATO_ENGINE_ROOT": str(REPO), "NO_AT_BRIDGE": "1"}
    env.update(extra or {})
    return env


PROFILE_SKIP = shutil.ignore_patterns("plug-ins", "parasiterc", "*.log", "crashlog")


def restore_profile(cache: Path, home: Path) -> bool:
    """Start from a GIMP profile saved by an earlier run: GIMP then skips re-querying every
    plug-in and rebuilding caches (the bulk of a cold start). Stored settings are not kept."""
    if not (cache / ".config").is_dir():
        return False
    shutil.copytree(cache, home, ignore=PROFILE_SKIP, dirs_exist_ok=True)
    return True


def save_profile(home: Path, cache: Path) -> None:
    tmp = cache.with_name(cache.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(home, tmp, ignore=PROFILE_SKIP, symlinks=True)
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)


def run_batch(host: Host, engine: Engine, work: Path, ops: list[str], only_cancel: bool = False,
              extra: dict | None = None) -> tuple[dict, dict, float]:
    home = work / "home"
    if restore_profile(host.profile_cache(), home):
        log("GIMP profile restored from the cache (warm start)")
    plugin_install.install("gimp", str(host.plugins_folder(home)), out=lambda _: None)
    test_image(work / "input.png")
    style_image(work / "style.png")
    long_op = None
    if "inpaint" in ops:
        # a refine (strength < 1) runs the whole sampler; a full-strength thin hole is one step
        long_op = {"proc": "sfumato-inpaint", "args": {"steps": 200, "seed": 1, "strength": 0.95}}
    elif "restore" in ops:
        long_op = {"proc": "sfumato-restore", "args": {"task": "denoise", "steps": 200}}
    cfg = {"image": host.inner(work / "input.png"), "style": host.inner(work / "style.png"),
           "out": host.inner(work), "address": engine.address, "ops": ops, "long_op": long_op,
           "relay_python": "/usr/bin/python3" if host.chroot else sys.executable, "only_cancel": only_cancel,
           **(extra or {})}
    (work / "config.json").write_text(json.dumps(cfg))
    batch = work / "batch_checks.py"
    shutil.copy(HERE / "batch_checks.py", batch)
    argv = [host.console, "-i", "--batch-interpreter=python-fu-eval",
            "-b", f"exec(open('{host.inner(batch)}').read())", "--quit"]
    t0 = time.monotonic()
    env = gimp_env(host.inner(home), host.inner(work / "config.json"), {"SFUMATO_GUARD_LOG": host.inner(work / "guard.log"),
                                                                                "SFUMATO_ENGINE": engine.address})
    # straight into a file: what GIMP said survives a kill on the test's time limit
    with open(work / "gimp-batch.log", "w") as out:
        proc = subprocess.Popen(host.command(argv, env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    cancel: dict = {}
    driver = threading.Thread(target=cancel_driver, args=(engine, work, proc, cancel), daemon=True)
    driver.start()
    try:
        proc.wait(timeout=1800)  # normally about 1 min; the shell script's overall limit is the real bound
    except subprocess.TimeoutExpired:
        log("gimp-console did not finish within 30 min; killed")
        proc.kill()
        proc.wait()
    elapsed = time.monotonic() - t0
    driver.join(120)  # the op may need a while to reach its next step and stop
    report_path = work / "report.json"
    if not report_path.exists():
        return {"checks": [{"name": "batch report written", "ok": False, "detail": "no report.json"}]}, cancel, elapsed
    return json.loads(report_path.read_text()), cancel, elapsed


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_python(host: Host, work: Path) -> str:
    """The engine's Python as the plug-in sees it. In the chroot that Python does not exist, so
    the plug-in gets a launcher that runs it in this process's root (/proc/PID/root)."""
    if not host.chroot:
        return sys.executable
    launcher = work / "engine-python"
    launcher.write_text(f'#!/bin/sh\nexec /usr/sbin/chroot /proc/{os.getpid()}/root {sys.executable} "$@"\n')
    launcher.chmod(0o755)
    return host.inner(launcher)


def run_autostart(host: Host, work: Path, models: Path) -> list[dict]:
    """GIMP with no engine running: the plug-in starts one, uses it, and it stops with GIMP."""
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    restore_profile(host.profile_cache(), home)
    plugin_install.install("gimp", str(host.plugins_folder(home)), out=lambda _: None)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    checks = [{"name": "auto-start: no engine runs at the plug-in's address before GIMP starts",
               "ok": not listening(port), "detail": address}]
    test_image(work / "input.png")
    cfg = {"image": host.inner(work / "input.png"), "out": host.inner(work), "address": address, "ops": [],
           "autostart_only": True}
    (work / "config.json").write_text(json.dumps(cfg))
    batch = work / "batch_checks.py"
    shutil.copy(HERE / "batch_checks.py", batch)
    argv = [host.console, "-i", "--batch-interpreter=python-fu-eval",
            "-b", f"exec(open('{host.inner(batch)}').read())", "--quit"]
    # the engine's output goes to $TMPDIR/sfumato-engine-ADDRESS.log: here, the work folder
    env = gimp_env(host.inner(home), host.inner(work / "config.json"),
                   {"SFUMATO_ENGINE": address, "SFUMATO_PYTHON": engine_python(host, work),
                    "SFUMATO_MODELS": str(models), "TMPDIR": host.inner(work)})
    t0 = time.monotonic()
    with open(work / "gimp-batch.log", "w") as out:
        proc = subprocess.Popen(host.command(argv, env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    gimp_s = time.monotonic() - t0
    deadline = time.monotonic() + 20  # --stop-with looks once a second; stopping takes a moment
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.25)
    engine_log = work / f"sfumato-engine-tcp-127-0-0-1-{port}.log"
    said = engine_log.read_text(errors="replace") if engine_log.exists() else ""
    stopped = not listening(port)
    checks.append({"name": "auto-start: the engine the plug-in started stopped when GIMP exited",
                   "ok": stopped and "has ended: stopping" in said, "detail": said[-400:]})
    report_path = work / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {
        "checks": [{"name": "auto-start: batch report written", "ok": False, "detail": "no report.json"}]}
    log(f"auto-start run: GIMP {gimp_s:.1f} s, engine start and first status call "
        f"{report.get('autostart_seconds', '?')} s")
    return report["checks"] + checks


def check_export(work: Path, report: dict) -> list[dict]:
    """The flattened export: identical to the input outside the selection, different inside."""
    out = work / "inpaint.png"
    before = work / "before.png"
    if not out.exists() or not before.exists() or "inpaint_selection" not in report:
        return []
    a = np.asarray(Image.open(before).convert("RGB")).astype(int)
    b = np.asarray(Image.open(out).convert("RGB")).astype(int)
    x, y, w, h = report["inpaint_selection"]
    inside = np.zeros(a.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    same_outside = a.shape == b.shape and bool((a[~inside] == b[~inside]).all())
    changed = float(np.abs(a[inside] - b[inside]).mean()) if a.shape == b.shape else 0.0
    return [{"name": "export: outside the selection identical to the input", "ok": same_outside, "detail": ""},
            {"name": "export: inside the selection changed", "ok": changed > 1.0, "detail": f"mean |diff| {changed:.1f}"}]


def check_zoo(work: Path, report: dict) -> list[dict]:
    """The zoo upscale the batch run exported: 4x the input and not a bicubic copy of it."""
    small, big = work / "zoo-small.png", work / "zoo-big.png"
    if "zoo" not in report or not small.exists() or not big.exists():
        return []
    verdict = zoo_compare.judge(small, big, 4)
    log(f"zoo upscale with {report['zoo']['model']}: {json.dumps(verdict)}")
    return [{"name": f"zoo upscale: 4x the input and not a bicubic copy (mean |diff| > {zoo_compare.MIN_DIFF})",
             "ok": verdict["ok"], "detail": json.dumps(verdict)}]


def show_logs(work: Path, lines: int = 40) -> None:
    """The end of what GIMP printed: on a CI machine the work folder is gone after the run."""
    for name in ("gimp-batch.log", "gimp-gui.log"):
        path = work / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            log(f"last {len(tail)} lines of {name}:\n" + "\n".join(tail))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/")
    ap.add_argument("--hosts", default=str(REPO / ".hosts"))
    ap.add_argument("--gui", action="store_true", help="also run gimp-3.0 under Xvfb: undo check, screenshots")
    ap.add_argument("--shots", default="", help="copy the screenshots here (docs/img)")
    ap.add_argument("--only-cancel", action="store_true", help="debugging: run only the cancel check")
    ap.add_argument("--only-patterns", action="store_true", help="debugging: run only Pattern Repeat and Recolor")
    ap.add_argument("--gui-only", action="store_true", help="debugging/screenshots: only the Xvfb run")
    args = ap.parse_args()
    # the shell script's time limit sends SIGTERM: stop the engine, GIMP and Xvfb on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    host = Host(Path(args.root).resolve())
    work = host.root / "tmp" / f"sfumato-gimp-{os.getpid()}"
    work.mkdir(parents=True)
    handler = logging.FileHandler(work / "engine.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("sfumato").addHandler(handler)
    logging.getLogger("sfumato").setLevel(logging.INFO)
    t_start = time.monotonic()
    models = models_dir(Path(args.hosts))
    ok = True
    phase = "the auto-start run (no engine running; gimp-console-3.0 starts one)"
    try:
        first = [] if args.gui_only or args.only_cancel or args.only_patterns else run_autostart(host, work / "autostart", models)
    except BaseException as exc:
        log(f"stopped early during {phase}: {exc!r}")
        raise
    # the engine serves the tiny model plus a zoo checkpoint (Real-ESRGAN x4plus) when ../shared/models has it
    served, zoo_skip = zoo_compare.zoo_models(models, work / "models")
    engine = Engine(bind="tcp://127.0.0.1:*", models_dir=served or models, device="cpu").start()
    phase = "starting"
    try:
        ops = sorted(k for k, v in engine.welcome()["ops"].items() if not v.get("test_only"))
        log(f"engine at {engine.address}, models from {served or models}, ops: {', '.join(ops) or 'none yet'}")
        if args.gui_only:
            home = work / "home"
            restore_profile(host.profile_cache(), home)
            plugin_install.install("gimp", str(host.plugins_folder(home)), out=lambda _: None)
            report, cancel, batch_s = {"checks": []}, {}, 0.0
        else:
            phase = "the batch run (gimp-console-3.0 calling every procedure)"
            extra = {"zoo_model": zoo_compare.ZOO_MODEL, "zoo_size": zoo_compare.ZOO_SIZE} if served else {}
            if args.only_patterns:
                extra["only_patterns"] = True
            report, cancel, batch_s = run_batch(host, engine, work, ops, only_cancel=args.only_cancel, extra=extra)
        checks = first + report["checks"] + check_export(work, report) + check_zoo(work, report)
        if zoo_skip:
            log(f"SKIP zoo upscale check: {zoo_skip}")
        if report.get("cancel") is not None or cancel:
            checks.append({"name": "cancel: the engine got the cancel within 5 s of the plug-in being killed",
                           "ok": bool(cancel.get("cancel_requested")) and cancel.get("cancel_request_seconds", 99) < 5,
                           "detail": json.dumps(cancel)})
            checks.append({"name": "cancel: the engine stopped the job", "ok": bool(cancel.get("idle")),
                           "detail": json.dumps(cancel)})
            log(f"cancel timings: {json.dumps(cancel)}")
        elif not any(op in ops for op in ("inpaint", "restore")):
            log("SKIP cancel check: the engine has no inpaint or restore op yet")
        if args.gui:
            from gui import run_gui  # noqa: E402  (same folder)

            gui_engine = engine
            if (SHIPPED_MODELS / "builtin" / "model.json").is_file():  # nicer screenshots with the real model
                shipped, _ = zoo_compare.zoo_models(SHIPPED_MODELS, work / "gui-models")  # plus the zoo model
                gui_engine = Engine(bind="tcp://127.0.0.1:*", models_dir=shipped or SHIPPED_MODELS, device="cpu").start()
            try:
                phase = "the GUI run (gimp-3.0 under Xvfb)"
                zoo = zoo_compare.ZOO_MODEL if zoo_compare.ZOO_MODEL in {m["name"] for m in gui_engine.models.list()} else ""
                checks += run_gui(host, gui_engine, work, Path(args.shots) if args.shots else None, zoo)
            finally:
                if gui_engine is not engine:
                    gui_engine.stop()
        if (work / "report.json").exists():
            save_profile(work / "home", host.profile_cache())
        for c in checks:
            log(f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']}" + (f"  [{c['detail']}]" if c["detail"] and not c["ok"]
                                                                   else ""))
            ok &= c["ok"]
        if report.get("crash"):
            log("batch script crashed:\n" + report["crash"])
        log(f"GIMP {report.get('gimp', '?')} ({host.console}); batch run {batch_s:.1f} s; whole test {time.monotonic() - t_start:.1f} s;"
            f" procedure timings {json.dumps(report.get('timings', {}))}")
        missing = [op for op in ("inpaint", "restore", "stylize", "generate") if op not in ops]
        if missing:
            log(f"NOTE: the engine does not offer {', '.join(missing)} yet: those procedures were checked for a "
                f"readable unknown-op error only")
    except BaseException as exc:  # a crash here, or SIGTERM from the time limit: keep the evidence
        ok = False
        why = "SIGTERM (the time limit)" if isinstance(exc, SystemExit) and exc.code == 124 else repr(exc)
        log(f"stopped early during {phase}: {why}")
        raise
    finally:
        engine.stop()
        if ok and not os.environ.get("SFUMATO_KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            if not ok:
                show_logs(work)
            log(f"work folder kept: {work}")
    log("RESULT: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
