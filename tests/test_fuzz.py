"""Over 10,000 seeded hostile messages against a real engine on a loopback socket (issue 18).

Each hostile message is followed by a `ping` with its own id; the engine answers one
connection's messages in order, so everything between two pongs answers the one hostile
message in between. Every hostile message must get exactly one answer, every error must
carry a code that docs/protocol.md documents and never `internal`, the classes whose answer
is fixed by the document must get that code, and afterwards the engine still runs normal jobs.
Progress, results and errors of the rare hostile submit the engine accepts (a random mutation
can be valid) arrive at any time; they are told apart by their job ids.
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import msgpack
import numpy as np
import pytest

from engine.client import Client
from engine.errors import INTERNAL
from engine.protocol import Limits
from engine.server import Engine
from rawclient import Raw
from test_hardening import deep_header
from test_protocol import desc, pack

SEED = 18
MESSAGES = 10_400
BATCH = 100  # hostile messages in flight before the test reads the answers
LIMITS = Limits(max_steps=50, max_side=64, max_pixels=64 * 64, max_queue_per_client=4)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
ASYNC = ("progress", "result", "cancelled")


def documented_codes() -> set[str]:
    """The codes of the table in the Errors section of docs/protocol.md."""
    section = DOCS.read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


# ---- building blocks ----------------------------------------------------------------------
JUNK = (None, True, False, 0, -1, 1.0, 1.5, -2**63, 2**64 - 1, float("nan"), float("inf"), "", "x" * 300,
        "\x00\r\n\x1b[31m", b"\xff\x00", [], [1, 2], {}, {"a": 1}, {1: 2})


def img_frame(rng: random.Random, h: int = 4, w: int = 4, c: int = 3) -> tuple[dict, bytes]:
    return desc(1, [h, w, c]), bytes(rng.randrange(256) for _ in range(h * w * c))


def echo(rid: str, rng: random.Random, **fields) -> list[bytes]:
    d, data = img_frame(rng)
    return pack({"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": d}, "params": {}, **fields},
                data)


def base_inputs(schema: dict) -> tuple[dict, list[bytes]]:
    """Valid inputs for an op from its welcome schema: 16x16 zeros of the first channel count."""
    inputs, frames = {}, []
    for name, spec in schema["inputs"].items():
        if spec["required"]:
            c = spec["channels"][0]
            frames.append(bytes(16 * 16 * c))
            inputs[name] = desc(len(frames), [16, 16, c])
    return inputs, frames


def bad_values(spec: dict) -> list:
    """Values the parameter spec does not allow: out of range, wrong type, not a choice."""
    kind, lo, hi = spec["type"], spec.get("min"), spec.get("max")
    common = ["x", [], {}, b"\x00", {"nested": [1]}] + ([] if spec.get("nullable") else [None])
    if kind == "int":
        return common + [1.5, "3", float("nan"), 2**64 - 1, -2**63] + \
            [v for v in (None if lo is None else lo - 1, None if hi is None else hi + 1) if v is not None]
    if kind == "float":
        return common + [float("nan"), float("inf"), float("-inf"), "0.5"] + \
            [v for v in (None if lo is None else lo - 1.0, None if hi is None else hi + 1.0) if v is not None]
    if kind == "bool":
        return common + [1, 0, "true"]
    if kind in ("enum", "multi"):
        return common + ["no-such-choice", 3.25, ",", "auto,denoise" if kind == "multi" else "none,none"]
    if kind == "model":
        return [3, [], "../elsewhere/m", "/abs/m", "a/b", ".", "..", "", "x\x00y", "no-such-model", "c:m"]
    return [3, 2.5, [], {}, True]  # str


# ---- the classes: name -> (weight, make frames, the codes docs/protocol.md gives, or None: any) ----
Make = Callable[[random.Random, str, dict], list[bytes]]


def bad_frames(rng, rid, ctx):
    pick = rng.randrange(4)
    if pick == 0:
        return [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48)))]
    if pick == 1:
        return [b""]
    if pick == 2:  # a frame no descriptor references
        return pack({"v": 1, "type": "ping", "id": rid}, b"extra" * rng.randrange(1, 4))
    frames = echo(rid, rng)
    return frames[:1] if rng.random() < 0.5 else frames + [b"\x00" * rng.randrange(1, 9)]


def bad_msgpack(rng, rid, ctx):
    good = msgpack.packb({"v": 1, "type": "ping", "id": rid})
    pick = rng.randrange(4)
    if pick == 0:
        return [good[: rng.randrange(1, len(good))]]
    if pick == 1:
        return [msgpack.packb(rng.choice([[1, 2], 7, "ping", b"ping", None, 1.5]))]
    if pick == 2:
        return [msgpack.packb({1: 1, "v": 1, "type": "ping", "id": rid}, strict_types=False)]
    return [good + b"\xc1"]  # trailing bytes, a reserved byte


def wrong_types(rng, rid, ctx):
    header = {"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": desc(1, [4, 4, 3])}, "params": {}}
    key = rng.choice(["type", "op", "inputs", "params"])
    header[key] = rng.choice([j for j in JUNK if not isinstance(j, dict) or key != "params"])
    return pack(header, bytes(48))


def bad_version(rng, rid, ctx):
    header = {"type": "ping", "id": rid}
    if rng.random() < 0.9:
        header["v"] = rng.choice([0, 2, -1, 1.0, True, "1", None, 2**64 - 1, [1], {"v": 1}, b"\x01"])
    return pack(header)


def bad_sizes(rng, rid, ctx):
    h, w = rng.choice([(0, 4), (-4, 4), (2**31, 2**31), (10**9, 1), (65, 65), (2**64 - 1, 1), (4, -2**63)])
    return pack({"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": desc(1, [h, w, 3])}},
                bytes(48))


def bad_descriptor(rng, rid, ctx):
    d = desc(1, [4, 4, 3])
    pick = rng.randrange(6)
    if pick == 0:
        d["dtype"] = rng.choice(["u32", "f64", "", "U8", 3, ["u8"], {"u8": 1}, None, True])
    elif pick == 1:
        d["shape"] = rng.choice([[4, 4], [4, 4, 3, 1], [4.0, 4, 3], ["4", 4, 3], [4, 4, 2], [4, 4, 5], 48, None,
                                 [[4], 4, 3], [True, 4, 3]])
    elif pick == 2:
        d["buf"] = rng.choice([0, 2, -1, 1.0, "1", None, 2**64 - 1, True])
    elif pick == 3:
        d[rng.choice(["extra", "offset", "nbytes", ""])] = 1
    elif pick == 4:
        header = {"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": d, "mask": desc(1, [4, 4, 1])}}
        return pack(header, bytes(48))
    else:
        header = {"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": {**d, "shape": "DEEP"}}}
        return [deep_header(header, "DEEP", rng.choice([33, 100, 1000, 5000])), bytes(48)]
    return pack({"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": d}}, bytes(48))


def bad_shm(rng, rid, ctx):
    name = rng.choice(["../../etc/passwd", "sfumato-x", "sfumato-" + "a" * 65, "sfumato-doesnotexist0\n",
                       "sfumato-doesnotexist01", "/dev/shm/sfumato-abcdefgh", "sfumato-abc\x00defgh", 7, None,
                       ["sfumato-abcdefgh"], "SFUMATO-ABCDEFGH", "sfumato-abcdefgh/../x"])
    d = {"shm": name, "offset": rng.choice([0, -64, 3, 2**63, 1.0, "0"]), "shape": [4, 4, 3], "dtype": "u8"}
    header = {"v": 1, "type": "submit", "id": rid, "op": "echo", "inputs": {"image": d}}
    if rng.random() < 0.3:
        header["shm_out"] = rng.choice([5, {"shm": name, "offset": 0, "nbytes": -1}, {"shm": name}, []])
    return pack(header)


def unknown_op_or_param(rng, rid, ctx):
    if rng.random() < 0.5:
        return echo(rid, rng, op=rng.choice(["nope", "", "ECHO", "echo ", "inpaint\x00", "../echo", "x" * 200]))
    return echo(rid, rng, params={rng.choice(["speed", "", "STEPS", "steps ", "x" * 100, "__class__"]): 1})


def bad_param(rng, rid, ctx):
    op = rng.choice(sorted(ctx["ops"]))
    schema = ctx["ops"][op]
    pname = rng.choice(sorted(schema["params"]))
    inputs, frames = base_inputs(schema)
    value = rng.choice(bad_values(schema["params"][pname]))
    return pack({"v": 1, "type": "submit", "id": rid, "op": op, "inputs": inputs, "params": {pname: value}}, *frames)


def bad_id(rng, rid, ctx):
    kind = rng.choice(["submit", "cancel", "ping", "status"])
    bad = rng.choice([3, "", "x" * 129, None, [rid], {"id": rid}, b"bytes", 1.5, True])
    if kind == "submit":
        return echo(rid, rng, id=bad)
    if kind == "cancel":
        return pack({"v": 1, "type": "cancel", "id": bad})
    return pack({"v": 1, "type": kind, "id": bad})


def cancel_unknown(rng, rid, ctx):
    return pack({"v": 1, "type": "cancel", "id": rng.choice([rid, f"never-{rid}", "f0", "\u00e9" * 40])})


def duplicate_id(rng, rid, ctx):
    return echo(ctx["long_job"], rng)


def unknown_type_or_field(rng, rid, ctx):
    if rng.random() < 0.5:
        return pack({"v": 1, "type": rng.choice(["pong", "welcome", "result", "submitt", "", "PING", "x" * 64]),
                     "id": rid})
    kind = rng.choice(["ping", "status", "hello", "models", "cancel"])
    return pack({"v": 1, "type": kind, "id": rid, rng.choice(["param", "extra", "ID", "v2"]): rng.choice(JUNK)})


def hello_strings(rng, rid, ctx):
    header = {"v": 1, "type": "hello", "id": rid}
    if rng.random() < 0.5:
        header["client"] = rng.choice(["\r\n[ERROR] forged", "\x1b[2J", "a\x00b", "x" * 10_000, 3, None, ["c"]])
    else:
        header["capabilities"] = rng.choice([["rules"] * 65, "rules", [3], [None], ["x" * 1000], {"rules": 1}])
    return pack(header)


def limits(rng, rid, ctx):
    if rng.random() < 0.2:
        return pack({"v": 1, "type": "ping", "id": rid, "pad": "x" * (1 << 20)})
    return echo(rid, rng) + [b"\x00"] * rng.randrange(16, 20)


def mutated(rng, rid, ctx):
    """A valid echo submit with one value anywhere in its header replaced by junk."""
    header = msgpack.unpackb(echo(rid, rng)[0])
    paths = [("v",), ("type",), ("op",), ("params",), ("inputs",), ("inputs", "image"), ("inputs", "image", "buf"),
             ("inputs", "image", "shape"), ("inputs", "image", "dtype")]
    path = rng.choice(paths)
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = rng.choice(JUNK + (1, 4, "u16", "echo", [4, 4, 3]))
    return [msgpack.packb(header), bytes(48)]


CLASSES: dict[str, tuple[float, Make, set[str] | None]] = {
    "bad frames": (1.0, bad_frames, {"bad_message"}),
    "bad msgpack": (1.0, bad_msgpack, {"bad_message"}),
    "wrong types": (1.0, wrong_types, {"bad_message", "bad_param", "unknown_op"}),
    "bad version": (0.6, bad_version, {"bad_message"}),
    "huge or negative sizes": (0.8, bad_sizes, {"bad_message", "too_large"}),
    "bad descriptors": (1.2, bad_descriptor, {"bad_message", "bad_param"}),
    "bad shm descriptors": (0.8, bad_shm, {"bad_message"}),
    "unknown ops and params": (0.8, unknown_op_or_param, {"unknown_op", "bad_param", "bad_message"}),
    "out-of-range params": (2.0, bad_param, {"bad_param", "too_large", "model_missing"}),
    "bad ids": (0.8, bad_id, {"bad_message"}),
    "cancel of unknown ids": (0.5, cancel_unknown, {"not_found"}),
    "duplicate ids": (0.3, duplicate_id, {"duplicate_id"}),
    "unknown types and fields": (0.6, unknown_type_or_field, {"bad_message"}),
    "hello strings": (0.4, hello_strings, None),
    "over the limits": (0.2, limits, {"too_large"}),
    "random mutations": (1.0, mutated, None),
}


# ---- the run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tiny_models_dir):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tiny_models_dir, device="cpu", limits=LIMITS).start()
    yield eng
    eng.stop()


def test_ten_thousand_hostile_messages(engine, one_torch_thread):
    documented = documented_codes()
    assert INTERNAL in documented and "bad_message" in documented
    rng = random.Random(SEED)
    names = list(CLASSES)
    weights = [CLASSES[n][0] for n in names]
    raw = Raw(engine.address)
    welcome = raw.request({"type": "hello", "id": "hello"})
    ctx = {"ops": welcome["ops"], "long_job": "long"}
    # A long job holds its id for the duplicate class (and the queue for the busy answers).
    raw.sock.send_multipart(echo("long", rng, params={"steps": 50, "delay": 60.0}))
    assert raw.recv_until("accepted", "long")["id"] == "long"

    accepted: set[str] = {"long"}
    answers: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    t0 = time.monotonic()
    for start in range(0, MESSAGES, BATCH):
        sent = []
        for i in range(start, min(start + BATCH, MESSAGES)):
            cls = rng.choices(names, weights)[0]
            rid = f"f{i}"
            frames = CLASSES[cls][1](rng, rid, ctx)
            raw.sock.send_multipart(frames)
            raw.send({"type": "ping", "id": f"sync{i}"})
            sent.append((i, ctx["long_job"] if cls == "duplicate ids" else rid, cls, frames[0][:80]))
        for i, own, cls, head in sent:
            replies = []
            while True:
                msg, _ = raw.recv(timeout=10.0)
                if msg.get("type") == "pong" and msg.get("id") == f"sync{i}":
                    break
                if msg.get("id") in accepted and msg.get("id") != own and (
                        msg["type"] in ASYNC or msg["type"] == "error"):
                    if msg["type"] == "error" and msg["code"] == INTERNAL:
                        problems.append(f"internal error for accepted job {msg['id']}: {msg}")
                    continue  # a message about a job accepted earlier
                if msg["type"] in ASYNC and msg.get("id") == own:
                    continue
                replies.append(msg)
            problems += check_answer(cls, head, replies, documented)
            for msg in replies:
                if msg["type"] == "accepted":
                    accepted.add(msg["id"])
                answers[(cls, msg.get("code") or msg["type"])] += 1
    elapsed = time.monotonic() - t0
    assert not problems, f"{len(problems)} problems, e.g.:\n" + "\n".join(problems[:15])
    assert sum(answers.values()) == MESSAGES
    for cls in names:  # every class was exercised
        assert sum(n for (c, _), n in answers.items() if c == cls) >= 50, (cls, answers)

    raw.request({"type": "cancel", "id": "long"}, timeout=10)
    raw.close()
    with Client(engine.address, timeout=30) as c:  # normal work still goes through
        image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
        assert np.array_equal(c.run("echo", {"image": image}, {"steps": 2}).image, image)
        mask = np.zeros((16, 16, 1), np.uint8)
        mask[4:12, 4:12] = 255
        assert c.run("inpaint", {"image": image, "mask": mask}, {"steps": 2, "seed": 1}).image.shape == image.shape
    print(f"{MESSAGES} hostile messages in {elapsed:.1f} s; answers: {dict(sorted(answers.items()))}")


def check_answer(cls: str, head: bytes, replies: list[dict], documented: set[str]) -> list[str]:
    """What is wrong with the answers to one hostile message (empty when nothing is)."""
    where = f"{cls} {head!r}"
    if len(replies) != 1:
        return [f"{where}: {len(replies)} answers: {replies[:3]}"]
    msg = replies[0]
    expected = CLASSES[cls][2]
    if msg["type"] != "error":
        return [] if expected is None else [f"{where}: expected an error {sorted(expected)}, got {msg['type']}"]
    code = msg.get("code")
    if code not in documented or code == INTERNAL:
        return [f"{where}: code {code!r}: {msg.get('message')}"]
    if expected is not None and code not in expected:
        return [f"{where}: code {code!r} not in {sorted(expected)}: {msg.get('message')}"]
    if not isinstance(msg.get("message"), str) or not msg["message"]:
        return [f"{where}: error without a message: {msg}"]
    return []


def test_documented_codes_are_the_engines():
    from engine.errors import CODES

    assert documented_codes() == set(CODES)
