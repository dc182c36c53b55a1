"""Wire format: round trips, zero-copy decoding, every validation rule, and decoder fuzzing."""
from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import BAD_MESSAGE, BAD_PARAM, CODES, TOO_LARGE, EngineError
from engine.protocol import Limits, decode, encode, plain, request_id_of

LIMITS = Limits()


def pack(header: dict, *buffers: bytes) -> list[bytes]:
    return [msgpack.packb(header, use_bin_type=True), *buffers]


def desc(buf: int, shape: list, dtype: str = "u8") -> dict:
    return {"buf": buf, "shape": shape, "dtype": dtype}


def expect(frames: list, code: str, field: str | None = "?", limits: Limits = LIMITS) -> EngineError:
    with pytest.raises(EngineError) as info:
        decode(frames, limits)
    assert info.value.code == code, info.value.message
    if field != "?":
        assert info.value.field == field, (info.value.field, info.value.message)
    return info.value


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_round_trip_arrays(dtype, channels):
    arr = (np.arange(5 * 7 * channels) % 200).astype(dtype).reshape(5, 7, channels)
    frames = encode({"type": "submit", "id": "a", "op": "echo", "inputs": {"image": arr}, "params": {"x": 1}})
    assert frames[1] is arr or np.shares_memory(frames[1], arr)  # no copy on encode
    msg = decode(frames)
    assert msg["v"] == 1 and msg["type"] == "submit" and msg["params"] == {"x": 1}
    out = msg["inputs"]["image"]
    assert out.dtype == arr.dtype and out.shape == arr.shape and np.array_equal(out, arr)


def test_decode_is_zero_copy():
    buf = bytearray(np.arange(48, dtype=np.uint8).tobytes())
    frames = pack({"v": 1, "type": "submit", "id": "z", "op": "echo", "inputs": {"image": desc(1, [4, 4, 3])}},
                  buf)
    arr = decode(frames)["inputs"]["image"]
    buf[0] = 99
    assert arr[0, 0, 0] == 99  # a view of the frame, not a copy


def test_encode_2d_becomes_one_channel_and_big_endian_is_fixed():
    arr = np.arange(6, dtype=">u2").reshape(2, 3)
    msg = decode(encode({"type": "result", "id": "r", "outputs": {"image": arr}, "meta": {}}), from_engine=True)
    out = msg["outputs"]["image"]
    assert out.shape == (2, 3, 1) and out.dtype == np.dtype("<u2") and out[1, 2, 0] == 5


def test_encode_rejects_unsupported_arrays():
    with pytest.raises(TypeError):
        encode({"type": "result", "outputs": {"image": np.zeros((2, 2, 3), np.int64)}})
    with pytest.raises(ValueError):
        encode({"type": "result", "outputs": {"image": np.zeros((2, 2, 2), np.uint8)}})


def test_progress_preview_and_engine_messages():
    preview = np.zeros((8, 8, 3), np.uint8)
    msg = decode(encode({"type": "progress", "id": "p", "step": 1, "total": 2, "stage": "x", "preview": preview}),
                 from_engine=True)
    assert msg["preview"].shape == (8, 8, 3)
    for kind in ("welcome", "accepted", "error", "cancelled", "pong", "status", "models"):
        assert decode(encode({"type": kind, "id": "i"}), from_engine=True)["type"] == kind


def test_plain_converts_numpy_and_non_finite():
    assert plain({"a": np.float32(1.5), "b": (np.int64(2),), "c": float("nan"), "d": np.arange(2)}) == \
        {"a": 1.5, "b": [2], "c": None, "d": [0, 1]}


def test_client_messages_are_accepted():
    for header in ({"type": "hello", "client": "gimp"}, {"type": "hello"}, {"type": "ping", "id": "1"},
                   {"type": "hello", "capabilities": []}, {"type": "hello", "capabilities": ["rules", "later-thing"]},
                   {"type": "status"}, {"type": "models", "refresh": True}, {"type": "cancel", "id": "j"}):
        assert decode(pack({"v": 1, **header}))["type"] == header["type"]


# ---- every bad input ----------------------------------------------------------------------------
GOOD = {"v": 1, "type": "submit", "id": "s1", "op": "echo"}
RGB_2x2 = bytes(12)


def test_malformed_msgpack():
    expect([b"\xc1\x00garbage"], BAD_MESSAGE)
    expect([msgpack.packb([1, 2, 3])], BAD_MESSAGE)  # not a map
    expect([msgpack.packb({"v": 1, "type": "ping"}) + b"\x00"], BAD_MESSAGE)  # trailing bytes
    expect([], BAD_MESSAGE)


def test_header_fields():
    expect(pack({"type": "ping"}), BAD_MESSAGE, "v")
    expect(pack({"v": 2, "type": "ping"}), BAD_MESSAGE, "v")
    expect(pack({"v": True, "type": "ping"}), BAD_MESSAGE, "v")
    expect(pack({"v": 1, "type": "launch"}), BAD_MESSAGE, "type")
    expect(pack({"v": 1, "type": "welcome"}), BAD_MESSAGE, "type")  # an engine message from a client
    expect(pack({"v": 1, "type": "ping", "id": 7}), BAD_MESSAGE, "id")
    expect(pack({"v": 1, "type": "ping", "id": ""}), BAD_MESSAGE, "id")
    expect(pack({"v": 1, "type": "ping", "id": "x" * 200}), BAD_MESSAGE, "id")
    expect(pack({"v": 1, "type": "cancel"}), BAD_MESSAGE, "id")
    expect(pack({"v": 1, "type": "ping", "extra": 1}), BAD_MESSAGE, "extra")
    expect(pack({"v": 1, "type": "hello", "client": 5}), BAD_MESSAGE, "client")
    for caps in ("rules", [1], [""], ["x" * 200], ["c"] * 65, {"rules": True}):
        expect(pack({"v": 1, "type": "hello", "capabilities": caps}), BAD_MESSAGE, "capabilities")
    expect(pack({"v": 1, "type": "models", "refresh": "yes"}), BAD_MESSAGE, "refresh")


def test_submit_fields():
    expect(pack({"v": 1, "type": "submit", "id": "s", "inputs": {}}), BAD_MESSAGE, "op")
    expect(pack({**GOOD}), BAD_MESSAGE, "inputs")
    expect(pack({**GOOD, "op": 3, "inputs": {}}), BAD_MESSAGE, "op")
    expect(pack({**GOOD, "inputs": []}), BAD_MESSAGE, "inputs")
    expect(pack({**GOOD, "inputs": {}, "params": [1]}), BAD_PARAM, "params")


def test_request_id_is_kept_for_errors():
    err = expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3])}}), BAD_MESSAGE)
    assert request_id_of(err) == "s1"


def test_missing_and_extra_frames():
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3])}}), BAD_MESSAGE, "inputs.image.buf")
    expect(pack({**GOOD, "inputs": {"image": desc(2, [2, 2, 3])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.buf")
    expect(pack({**GOOD, "inputs": {"image": desc(0, [2, 2, 3])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.buf")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3])}}, RGB_2x2, b"extra"), BAD_MESSAGE, None)
    expect(pack({"v": 1, "type": "ping"}, b"stray"), BAD_MESSAGE, None)
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3]), "mask": desc(1, [2, 2, 3])}}, RGB_2x2),
           BAD_MESSAGE, "inputs.mask.buf")
    expect(pack({**GOOD, "inputs": {"image": desc("1", [2, 2, 3])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.buf")


def test_buffer_size_must_match_shape():
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3])}}, bytes(11)), BAD_MESSAGE, "inputs.image.buf")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3], "u16")}}, RGB_2x2), BAD_MESSAGE, "inputs.image.buf")


def test_descriptor_types_dtype_and_channels():
    for shape in ([2, 2], [2, 2, 3, 1], "2x2", [2.0, 2, 3], [True, 2, 3]):
        expect(pack({**GOOD, "inputs": {"image": desc(1, shape)}}, RGB_2x2), BAD_MESSAGE, "inputs.image.shape")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 3, 2])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.shape")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3], "f64")}}, RGB_2x2), BAD_MESSAGE,
           "inputs.image.dtype")
    expect(pack({**GOOD, "inputs": {"image": [1, 2]}}, RGB_2x2), BAD_MESSAGE, "inputs.image")
    expect(pack({**GOOD, "inputs": {"image": {**desc(1, [2, 2, 3]), "stride": 4}}}, RGB_2x2), BAD_MESSAGE,
           "inputs.image")


def test_negative_and_absurd_sizes():
    expect(pack({**GOOD, "inputs": {"image": desc(1, [-2, -2, 3])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.shape")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [0, 4, 3])}}, RGB_2x2), BAD_MESSAGE, "inputs.image.shape")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2**40, 2**40, 3])}}, RGB_2x2), TOO_LARGE, "inputs.image.shape")
    expect(pack({**GOOD, "inputs": {"image": desc(1, [1, 10**6, 3])}}, RGB_2x2), TOO_LARGE, "inputs.image.shape")
    small = Limits(max_pixels=3)
    expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 3])}}, RGB_2x2), TOO_LARGE, "inputs.image.shape", small)


def test_nan_and_inf_in_float_arrays():
    for bad in (math.nan, math.inf, -math.inf):
        data = np.zeros((2, 2, 1), np.float32)
        data[1, 1, 0] = bad
        expect(pack({**GOOD, "inputs": {"image": desc(1, [2, 2, 1], "f32")}}, data.tobytes()), BAD_PARAM,
               "inputs.image")


def test_header_and_frame_count_limits():
    expect([msgpack.packb({"v": 1, "type": "hello", "client": "x" * 2000})], TOO_LARGE, None,
           Limits(max_header_bytes=1000))
    expect(pack({"v": 1, "type": "ping"}, *([b"x"] * 20)), TOO_LARGE, None)


# ---- fuzzing: the decoder either returns a valid message or raises EngineError --------------------
def _check_decode(frames: list) -> None:
    try:
        msg = decode(frames, Limits(max_pixels=4096, max_side=256))
    except EngineError as exc:
        assert exc.code in CODES
        return
    assert msg["v"] == 1 and isinstance(msg["type"], str)
    for value in (msg.get("inputs") or {}).values():
        assert isinstance(value, np.ndarray) and value.ndim == 3


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(), st.text(max_size=8),
                     st.binary(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                       max_leaves=12)
_descs = st.fixed_dictionaries({"buf": st.one_of(st.integers(-2, 4), _scalars),
                                "shape": st.one_of(st.lists(st.integers(-3, 70), max_size=4), _values),
                                "dtype": st.sampled_from(["u8", "u16", "f32", "f64", 3])})
_headers = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), _scalars), "type": st.one_of(st.sampled_from(["submit", "hello", "cancel", "ping",
                                                                             "models", "status"]), _scalars)},
    optional={"id": st.one_of(st.text(max_size=10), _scalars), "op": st.one_of(st.just("echo"), _scalars),
              "inputs": st.one_of(st.dictionaries(st.sampled_from(["image", "mask"]), _descs, max_size=2), _values),
              "params": _values, "refresh": _scalars, "client": _scalars, "junk": _values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers, buffers=st.lists(st.binary(max_size=64), max_size=3))
def test_fuzz_structured_headers(header, buffers):
    _check_decode([msgpack.packb(header, use_bin_type=True), *buffers])


@settings(max_examples=150, deadline=None)
@given(frames=st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_fuzz_random_bytes(frames):
    _check_decode(frames)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), c=st.sampled_from([1, 3, 4]),
       dtype=st.sampled_from([np.uint8, np.uint16, np.float32]), seed=st.integers(0, 2**32 - 1))
def test_fuzz_valid_arrays_round_trip(h, w, c, dtype, seed):
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, c)) * 1000).astype(dtype)
    msg = decode(encode({"type": "submit", "id": "f", "op": "echo", "inputs": {"image": arr}}))
    assert np.array_equal(msg["inputs"]["image"], arr)
