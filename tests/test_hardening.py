"""Regression tests for the hostile-input and fault findings of issue 18 (D3, D6-D9, D12),
each against a real engine on loopback sockets."""
from __future__ import annotations

import logging
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest

from rawclient import Raw
from engine import MAX_MESSAGE_BYTES
from engine import shm as shmem
from engine.relay import read_message, write_message
from engine.server import Engine
from engine.tasks.base import InputSpec, Operation

DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


@pytest.fixture()
def engine(tmp_path):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu").start()
    yield eng
    eng.stop()


def echo_submit(rid: str, **params) -> tuple[dict, bytes]:
    img = np.zeros((2, 2, 3), np.uint8)
    return ({"type": "submit", "id": rid, "op": "echo",
             "inputs": {"image": {"buf": 1, "shape": [2, 2, 3], "dtype": "u8"}}, "params": params}, img.tobytes())


def assert_refused(reply: dict, rid: str, code: str = "bad_message", field: str | None = None) -> None:
    assert reply["type"] == "error" and reply["id"] == rid and reply["code"] == code, reply
    if field is not None:
        assert reply["field"] == field, reply


# ---- D3: the end of a job --------------------------------------------------------------
class SlowToFree(dict):
    """Outputs whose memory takes a while to release, as a real op's tensors do."""

    def __del__(self) -> None:
        time.sleep(0.02)


def slow_free_run(inputs: dict, params: dict, ctx) -> tuple[dict, dict]:
    return SlowToFree(image=inputs["image"]), {}


SLOW_FREE = Operation(name="slowfree", doc="test: outputs slow to free", inputs=(InputSpec("image"),), params=(),
                      run=slow_free_run, test_only=True)


def test_job_is_finished_when_its_result_arrives(tmp_path):
    """Right after `result`, cancel answers not_found and the id can be submitted again."""
    with Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path, device="cpu",
                operations={"slowfree": SLOW_FREE}) as eng:
        raw = Raw(eng.address)
        try:
            header, data = echo_submit("again")
            header.update(op="slowfree", params={})
            for trial in range(5):
                raw.send(header, data)
                raw.recv_until("result", "again")
                raw.send({"type": "cancel", "id": "again"})
                raw.send(header, data)
                reply = raw.recv_until("error", "again")
                assert reply["code"] == "not_found", (trial, reply)
                raw.recv_until("result", "again")  # the resubmitted job was accepted and ran
        finally:
            raw.close()


# ---- D6: malformed descriptors and deep nesting ---------------------------------------------
@pytest.mark.parametrize("dtype", [["u8"], {"u8": 1}])
def test_unhashable_dtype_is_bad_message(raw, dtype):
    header, data = echo_submit("d")
    header["inputs"]["image"]["dtype"] = dtype
    assert_refused(raw.request(header, data), "d", field="inputs.image.dtype")


def deep_header(header: dict, marker: str, depth: int) -> bytes:
    """`header` packed with the string `marker` replaced by a list nested `depth` deep
    (msgpack's own packer refuses such depth; a hostile client writes the bytes by hand)."""
    packed = msgpack.packb({"v": 1, **header})
    nested = b"\x91" * depth + b"\x01"
    return packed.replace(msgpack.packb(marker), nested)


@pytest.mark.parametrize("where", ["shape", "param", "type"])
def test_deeply_nested_header_is_bad_message(raw, where):
    header, data = echo_submit("deep")
    if where == "shape":
        header["inputs"]["image"]["shape"] = "MARKER"
    elif where == "param":
        header["params"]["steps"] = "MARKER"
    else:
        header["type"] = "MARKER"
    raw.sock.send_multipart([deep_header(header, "MARKER", 1000), data])
    reply, _ = raw.recv()
    assert_refused(reply, "deep")
    raw.send(*echo_submit("fine"))
    assert raw.recv_until("result", "fine")["id"] == "fine"  # still serving


# ---- D7: shared-memory names ----------------------------------------------------------------
@pytest.mark.skipif(not shmem.available(), reason="no usable /dev/shm")
def test_segment_name_with_trailing_newline_is_refused(raw, engine):
    assert engine.shm is not None
    name = f"sfumato-hardening{os.getpid()}\n"
    path = os.path.join(shmem.SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.write(fd, bytes(4096))
        header = {"type": "submit", "id": "nl", "op": "echo",
                  "inputs": {"image": {"shm": name, "offset": 0, "shape": [2, 2, 3], "dtype": "u8"}}}
        assert_refused(raw.request(header), "nl", field="inputs.image.shm")
        assert os.path.exists(path), "the engine mapped and unlinked a segment with a bad name"
    finally:
        os.close(fd)
        if os.path.exists(path):
            os.unlink(path)


# ---- D8: client strings in the log --------------------------------------------------------
def test_client_strings_cannot_forge_log_lines(raw, caplog):
    caplog.set_level(logging.INFO, logger="sfumato")
    raw.request({"type": "hello", "id": "h", "client": "gimp\r\n[ERROR] forged log line\x1b[2J\x00"})
    raw.request({**echo_submit("bad\r\nline\x1b")[0], "params": {"fail": "internal"}}, echo_submit("x")[1])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("sfumato")]
    hello = [line for line in lines if "hello from" in line]
    assert hello and "forged log line" in hello[0]
    failed = [line for line in lines if line.startswith("job ")]
    assert failed, lines
    for line in hello + [f.split("\n", 1)[0] for f in failed]:
        assert not re.search(r"[\x00-\x1f\x7f]", line), repr(line)


# ---- D9: the version field ------------------------------------------------------------------
@pytest.mark.parametrize("version", [1.0, True, "1"])
def test_version_must_be_the_integer_1(raw, version):
    raw.sock.send_multipart([msgpack.packb({"v": version, "type": "ping", "id": "p"})])
    reply, _ = raw.recv()
    assert_refused(reply, "p", field="v")


# ---- D12: mask dtypes: welcome and docs/protocol.md agree ---------------------------------
def test_published_mask_dtypes_match_the_protocol_document(raw):
    documented = re.search(r"Masks are `\[h, w, 1\]` ([^:]+):", DOCS.read_text())
    assert documented, "docs/protocol.md no longer states the mask format"
    doc_dtypes = set(re.findall(r"`(u8|u16|f32)`", documented.group(1)))
    welcome = raw.request({"type": "hello", "id": "h"})
    for name, op in welcome["ops"].items():
        if "mask" in op["inputs"]:
            assert set(op["inputs"]["mask"]["dtypes"]) == doc_dtypes, name
    header, data = echo_submit("m")
    header.update(op="inpaint", inputs={"image": header["inputs"]["image"],
                                        "mask": {"buf": 2, "shape": [2, 2, 1], "dtype": "u16"}})
    assert_refused(raw.request(header, data, bytes(8)), "m", code="bad_param", field="inputs.mask")


# ---- D4: the relay and a broken length prefix -----------------------------------------------
@pytest.mark.parametrize("length", [0x40 << 56, (1 << 64) - 1, MAX_MESSAGE_BYTES + 1])
def test_relay_exits_on_an_absurd_frame_length(engine, length):
    """A bad length prefix on stdin: a clear error, the open job cancelled, exit status 1."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "engine.relay", "--address", engine.address], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        header, data = echo_submit("slow", steps=100, delay=30.0)
        write_message(proc.stdin, [msgpack.packb({"v": 1, **header}), data])
        while msgpack.unpackb(read_message(proc.stdout)[0])["type"] != "progress":
            pass  # accepted, then the job's first progress: it is running
        proc.stdin.write(struct.pack("<IQ", 1, length))
        proc.stdin.flush()
        rc = proc.wait(timeout=10)
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert rc == 1 and "out of sync" in err and err.count("\n") == 1, (rc, err)
    deadline = time.monotonic() + 5
    while engine.scheduler.status()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engine.scheduler.status()["running"], "the relay left its job running"
