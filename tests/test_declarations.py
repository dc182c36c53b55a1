"""Every op's declaration: what `welcome` publishes is exactly what a submit is held to.

For each op, each published bound and choice is tried at the edge: on it passes, past it
fails with the field named. Checks run on the real declarations, before any model is needed.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import EngineError
from engine.opcall import bind, positional
from engine.protocol import Limits
from engine.tasks import OPERATIONS

LIMITS = Limits(max_steps=30, max_variants=3, max_side=2048, max_pixels=1024 * 1024)
OPS = [op for op in OPERATIONS.values()]


def given_inputs(schema: dict) -> dict[str, np.ndarray]:
    """Every input, 32x32 in the first accepted channel count."""
    return {name: np.zeros((32, 32, spec["channels"][0]), np.uint8) for name, spec in schema["inputs"].items()}


def edges(spec: dict) -> list[tuple[object, bool | str]]:
    """(value, True if accepted / False or the error code if not) at the published bounds or
    choices of one parameter."""
    if spec["type"] in ("int", "float"):
        step = 1 if spec["type"] == "int" else 1e-3
        out = []
        if "min" in spec:
            out += [(spec["min"], True), (spec["min"] - step, False)]
        if "max" in spec:
            out += [(spec["max"], True), (spec["max"] + step, spec.get("max_code", "bad_param"))]
        return out
    if spec["type"] == "enum":
        wrong = 3 if isinstance(spec["choices"][0], int) else "no-such-choice"
        return [(c, True) for c in spec["choices"]] + [(wrong, False)]
    if spec["type"] == "multi":
        alone = spec.get("exclusive", [])
        return [(c, True) for c in spec["choices"]] + [("nope", False), ("", False)] + \
            [(f"{a},{next(c for c in spec['choices'] if c != a)}", False) for a in alone]
    return []


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_published_bounds_are_the_enforced_ones(op):
    schema = op.schema(LIMITS)
    inputs = given_inputs(schema)
    base = {"task": "denoise", "blur_sigma": 1.0} if op.name == "restore" else {}  # every task can run
    assert op.check(inputs, dict(base), LIMITS)
    for name, spec in schema["params"].items():
        if spec.get("limit"):
            assert spec["max"] <= getattr(LIMITS, spec["limit"])
        for value, ok in edges(spec):
            params = {**base, name: value}
            if ok is True:
                op.check(inputs, params, LIMITS)
            else:
                with pytest.raises(EngineError) as info:
                    op.check(inputs, params, LIMITS)
                assert info.value.field == f"params.{name}", (name, value, info.value.message)
                assert info.value.code == (ok or "bad_param"), (name, value)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_input_relations(op):
    schema = op.schema(LIMITS)
    for name, spec in schema["inputs"].items():
        inputs = given_inputs(schema)
        if spec.get("same_size_as"):
            inputs[name] = np.zeros((16, 32, spec["channels"][0]), np.uint8)
        elif spec.get("min_side"):
            inputs[name] = np.zeros((spec["min_side"] - 1, 32, spec["channels"][0]), np.uint8)
        else:
            continue
        with pytest.raises(EngineError) as info:
            op.check(inputs, {}, LIMITS)
        assert (info.value.code, info.value.field) == ("bad_param", f"inputs.{name}")


def test_rules_hold_in_both_directions():
    """The rules between fields, for the ops that declare them."""
    restore, generate, stylize = OPERATIONS["restore"], OPERATIONS["generate"], OPERATIONS["stylize"]
    img = {"image": np.zeros((600, 600, 3), np.uint8)}
    cases = [
        (restore, img, {"task": "deblur", "blur_sigma": 1.0, "motion_length": 3.0}, "params.motion_length"),
        (restore, img, {"task": "repair", "defects": "mask"}, "inputs.mask"),
        (restore, img, {"task": "upscale", "scale": 2}, "params.scale"),  # 1200^2 > LIMITS.max_pixels
        (generate, {}, {"width": 1024, "height": 1024, "variants": 2}, "params.width"),
        (stylize, img, {}, "inputs.style"),
    ]
    for op, inputs, params, field in cases:
        with pytest.raises(EngineError) as info:
            op.check(inputs, params, LIMITS)
        assert info.value.field == field, (op.name, params, info.value.message)
    for op, inputs, params in [(restore, img, {"task": "deblur", "motion_length": 3.0}),
                               (restore, img, {"task": "deblur"}),  # the blur is measured
                               (restore, img, {"task": "denoise", "defects": "mask"}),
                               (restore, {"image": np.zeros((500, 500, 3), np.uint8)}, {"task": "upscale"}),
                               (restore, img, {"task": "denoise", "scale": 4}),
                               (generate, {}, {"width": 1024, "height": 1024}),
                               (stylize, img, {"style_model": "mine"})]:
        op.check(inputs, params, LIMITS)


def test_calls_map_onto_the_declarations():
    """The Python call of each op: required inputs, then a size pair, then optional inputs."""
    schemas = {name: op.schema(LIMITS) for name, op in OPERATIONS.items()}
    assert positional(schemas["inpaint"]) == [("inputs", "image"), ("inputs", "mask"), ("inputs", "source")]
    assert bind("generate", schemas["generate"], (64, 48), {"tileable": True}) == \
        ({}, {"width": 64, "height": 48, "tileable": True})
    assert bind("stylize", schemas["stylize"], ("img", "ref"), {"mask": None}) == \
        ({"image": "img", "style": "ref"}, {})
    assert bind("restore", schemas["restore"], ("img",), {"task": "denoise", "mask": "m"}) == \
        ({"image": "img", "mask": "m"}, {"task": "denoise"})
    with pytest.raises(TypeError):
        bind("inpaint", schemas["inpaint"], ("img", "mask", "extra", "more"), {})
    with pytest.raises(TypeError):
        bind("inpaint", schemas["inpaint"], ("img",), {"image": "again"})
