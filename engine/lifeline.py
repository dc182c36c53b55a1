"""Stop the engine when the editor that started it has gone (`sfumato serve --stop-with PID`).

A plug-in that starts the engine for the artist passes its host's process id. GIMP runs each
plug-in call as a short-lived process, so the engine must outlive the call and cannot be a
child that dies with it; watching the host's id instead works the same for GIMP and Krita,
and also after a crash of the host.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable

WATCH_EVERY_S = 1.0


def process_alive(pid: int) -> bool:
    """True while a process with this id exists (a zombie counts as alive until reaped)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: still running
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def watch(pid: int, on_gone: Callable[[], None], every: float = WATCH_EVERY_S) -> threading.Thread:
    """Call `on_gone` once, on a daemon thread, when process `pid` has ended."""
    def run() -> None:
        stop = threading.Event()
        while process_alive(pid):
            stop.wait(every)
        on_gone()

    thread = threading.Thread(target=run, name=f"sfumato-lifeline-{pid}", daemon=True)
    thread.start()
    return thread
