"""The GUI half of the GIMP host test: gimp-3.0 under Xvfb, driven with xdotool.

Shows the Inpaint Selection dialog (screenshot), presses OK, waits for the result
(screenshot), presses Ctrl+Z once and checks that the result layer is gone and the pixels are
the original ones. Uses scikit-image's bundled cat photo, never project data.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
DISPLAY = ":77"
SIZE = (1280, 860)


def _log(msg: str) -> None:
    print(f"[gimp-host gui] {msg}", flush=True)


def _x(host, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(host.command(argv, {"DISPLAY": DISPLAY, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}),
                          capture_output=True, text=True, timeout=timeout)


def _find_window(host, name: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _x(host, ["xdotool", "search", "--onlyvisible", "--name", name])
        ids = out.stdout.split()
        if ids:
            return ids[-1]
        time.sleep(0.3)
    return None


def _shot(host, work: Path, name: str) -> Path:
    path = work / name
    _x(host, ["import", "-window", "root", host.inner(path)])
    return path


def _wait(path: Path, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return path.exists()
        time.sleep(0.1)
    return path.exists()


def _publish(src: Path, dst: Path, box: tuple[int, int, int, int] | None = None) -> None:
    """Crop to the interesting part, save as a compact PNG for docs/img."""
    img = Image.open(src).convert("RGB")
    if box:
        img = img.crop(box)
    img.save(dst, optimize=True)


def picker_checks(report: dict, model: str) -> list[dict]:
    """What the Restore dialog's model picker offered (gui_session.picker_check)."""
    seen = report.get("picker") or {}
    x4 = [row[0] for row in seen.get("upscale x4", [])]
    labels = dict(tuple(row) for row in seen.get("upscale x4", []))
    return [
        {"name": f"gui: the Restore dialog's model picker offers {model} for upscale x4, labelled",
         "ok": model in x4 and "upscale x4" in labels.get(model, "") and seen.get("chosen x4") == model,
         "detail": json.dumps(seen) + report.get("picker_crash", "")},
        {"name": "gui: the picker follows Scale 2 and Task denoise (the x4 model leaves, builtin chosen)",
         "ok": model not in seen.get("upscale x2", [model]) and seen.get("chosen x2") == "builtin"
         and model not in seen.get("denoise", [model]) and "builtin" in seen.get("denoise", []),
         "detail": json.dumps(seen)},
    ]


def run_gui(host, engine, work: Path, shots: Path | None, zoo_model: str = "") -> list[dict]:
    checks: list[dict] = []
    if "inpaint" not in engine.welcome()["ops"]:
        _log("SKIP GUI run (undo check, screenshots): the engine has no inpaint op yet")
        return checks
    if not (host.root / "usr/bin/Xvfb").exists() or not (host.root / "usr/bin" / host.gui).exists():
        _log(f"SKIP GUI run: Xvfb or {host.gui} missing")
        return checks
    from skimage import data

    Image.fromarray(data.chelsea()).save(work / "chelsea.png")  # 451 x 300
    # the shipped model paints a plausible fill; the tiny test model only noise, so show the patch method then
    shipped = (Path(engine.models.models_dir) / "builtin").resolve() == (HERE.parents[2] / "models" / "builtin").resolve()
    method = "diffusion" if shipped else "patch"
    cfg = {"image": host.inner(work / "chelsea.png"), "out": host.inner(work), "select": [250, 40, 110, 90],
           "method": method, "plugin_dir": host.inner(host.plugins_folder(work / "home") / "sfumato"),
           "zoo_model": zoo_model}
    (work / "gui.json").write_text(json.dumps(cfg))
    shutil.copy(HERE / "gui_session.py", work / "gui_session.py")
    home = work / "home"
    gimprc = home / ".config" / "GIMP" / host.version / "gimprc"
    gimprc.parent.mkdir(parents=True, exist_ok=True)
    gimprc.write_text("(show-welcome-dialog no)\n(show-tips no)\n(restore-session no)\n(save-session-info no)\n")
    xvfb = subprocess.Popen(host.command(["Xvfb", DISPLAY, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
                                         {"PATH": "/usr/bin:/bin"}),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gimp = None
    try:
        time.sleep(1.5)
        env = {"HOME": host.inner(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "DISPLAY": DISPLAY,
               "SFUMATO_HOST_TEST": host.inner(work / "gui.json"), "NO_AT_BRIDGE": "1",
               "GTK_THEME": "Adwaita", "SFUMATO_ENGINE": engine.address}
        argv = [host.gui, "--no-splash", "--batch-interpreter=python-fu-eval",
                "-b", f"exec(open('{host.inner(work / 'gui_session.py')}').read())", "--quit"]
        t0 = time.monotonic()
        with open(work / "gimp-gui.log", "w") as out:  # a file: survives a kill on the time limit
            gimp = subprocess.Popen(host.command(argv, env), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        if not _wait(work / "dialog", 900, gimp):  # a cold GIMP on a loaded CI box takes minutes
            checks.append({"name": "gui: GIMP started and opened the picture", "ok": False, "detail": "no marker"})
            return checks
        win = _find_window(host, "Inpaint Selection", 60)
        checks.append({"name": "gui: the Inpaint Selection dialog appears", "ok": win is not None, "detail": ""})
        if win is None:
            return checks
        main = _find_window(host, "GIMP$", 10)  # image window titles end with "– GIMP"
        # no window manager under Xvfb: lay the windows out by hand, pointer off the canvas
        if main is not None:
            _x(host, ["xdotool", "windowmove", main, "0", "0", "windowsize", main, str(SIZE[0]), str(SIZE[1])])
        _x(host, ["xdotool", "windowmove", win, "880", "150"])
        _x(host, ["xdotool", "mousemove", "2", str(SIZE[1] - 2)])
        time.sleep(2.5)
        dialog_png = _shot(host, work, "shot-dialog.png")
        _x(host, ["xdotool", "windowfocus", "--sync", win])
        _x(host, ["xdotool", "key", "Return"])  # XTEST: real key events (GTK ignores synthetic ones)
        time.sleep(2.0)
        if _find_window(host, "Inpaint Selection", 1) is not None:
            _x(host, ["xdotool", "windowfocus", "--sync", win])
            _x(host, ["xdotool", "key", "alt+o"])
        ran = _wait(work / "ran", 600, gimp)
        checks.append({"name": "gui: the job ran after OK", "ok": ran, "detail": ""})
        if not ran:
            return checks
        time.sleep(2.5)
        result_png = _shot(host, work, "shot-result.png")
        if main is not None:
            _x(host, ["xdotool", "mousemove", "640", "450"])
            _x(host, ["xdotool", "windowfocus", "--sync", main])
            _x(host, ["xdotool", "key", "ctrl+z"])
        (work / "undone").touch()
        _wait(work / "gui-done", 60, gimp)
        report = json.loads((work / "gui_report.json").read_text()) if (work / "gui_report.json").exists() else {}
        if report.get("crash"):
            _log(report["crash"])
        if zoo_model:
            checks += picker_checks(report, zoo_model)
        checks.append({"name": "gui: inpaint added one layer", "ok": report.get("status") == "success"
                       and len(report.get("layers_after_run", [])) == 2, "detail": json.dumps(report)})
        checks.append({"name": "gui: one Ctrl+Z removes the result and restores the pixels",
                       "ok": bool(report.get("undo_restored_pixels")), "detail": json.dumps(report)})
        _log(f"GUI run {time.monotonic() - t0:.1f} s")
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            _publish(dialog_png, shots / "gimp-dialog.png", (0, 0, SIZE[0], 640))
            _publish(result_png, shots / "gimp-result.png")
            _log(f"screenshots written to {shots}")
        return checks
    finally:
        if gimp is not None:
            try:
                gimp.wait(30)
            except subprocess.TimeoutExpired:
                gimp.kill()
                gimp.wait()
        xvfb.terminate()
        try:
            xvfb.wait(10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
            xvfb.wait()
