"""Both plug-ins from one schema: the shipped snapshot, what is derived from it, the shared result rules.

The snapshot (plugins/common/sfumato_link/ops_schema.json) must be exactly what a real engine
publishes as `welcome["ops"]`; GIMP's procedure arguments and Krita's forms are derived from it
(checked here without either host; tests/hosts/ run them in the real editors).
"""
from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))

import sfumato_link as link  # noqa: E402
from sfumato_link import schema  # noqa: E402


def _gimp_arguments():
    """plugins/gimp/sfumato/sfumato_gimp/arguments.py, which imports no GIMP (its folder also
    holds sfumato.py, so it is not put on sys.path)."""
    spec = importlib.util.spec_from_file_location("sfumato_gimp_arguments",
                                                  ROOT / "plugins" / "gimp" / "sfumato" / "sfumato_gimp" / "arguments.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


arguments = _gimp_arguments()

from engine.server import Engine  # noqa: E402

REGENERATE = "run `make schema` (tools/ops_schema.py) and commit plugins/common/sfumato_link/ops_schema.json"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine(bind="tcp://127.0.0.1:*", models_dir=tmp_path_factory.mktemp("no_models"), device="cpu").start()
    yield eng
    eng.stop()


def test_snapshot_is_what_the_engine_publishes(engine):
    session = link.Session(link.ZmqTransport(engine.address), client="schema-test")
    try:
        published = schema.dump(session.hello()["ops"])
    finally:
        session.close()
    shipped = Path(schema.SNAPSHOT_PATH).read_text(encoding="utf-8")
    if shipped != published:
        diff = "".join(list(difflib.unified_diff(shipped.splitlines(True), published.splitlines(True),
                                                 "ops_schema.json (shipped)", "welcome.ops (engine)", n=1))[:40])
        pytest.fail(f"the plug-ins' schema snapshot is out of date: {REGENERATE}\n{diff}")


def test_plugins_speak_the_engines_version_at_its_default_address():
    """The plug-ins ship without the engine, so they keep their own copy of these two facts."""
    import engine

    assert link.DEFAULT_ADDRESS == engine.DEFAULT_ADDRESS
    assert link.wire.VERSION == engine.PROTOCOL_VERSION


def test_make_schema_script_checks_and_writes_the_same_text(engine, capsys):
    spec = importlib.util.spec_from_file_location("ops_schema_tool", ROOT / "tools" / "ops_schema.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert schema.dump(tool.published_ops()) == schema.dump(engine.welcome()["ops"])
    assert tool.main(["--check"]) == 0, capsys.readouterr().out


def test_every_action_names_parameters_the_schema_declares():
    for action in link.ACTIONS:
        params = schema.op_params(action.engine_op)
        assert params is not None, f"{action.key}: the engine publishes no op {action.engine_op!r}"
        named = set(action.fields) | set(action.fixed) | set(action.defaults) | set(action.name_keys)
        assert named <= set(params), f"{action.key}: not in the schema: {sorted(named - set(params))}"
        assert "seed" not in action.fixed  # seed policy: the artist's seed or null, never one of ours
    assert {"width", "height"} <= set(schema.op_params("generate"))  # GIMP's size arguments


def test_gimp_arguments_take_ranges_and_defaults_from_the_schema():
    for action in link.ACTIONS:
        params = schema.op_params(action.engine_op)
        for arg in arguments.for_action(action, params):
            spec = action.own.get(arg.param) or params[arg.param]  # the plug-in's own fields, else the engine's
            if arg.name in ("width", "height"):  # 0 = the selection's size, up to the engine's maximum
                assert (arg.min, arg.max, arg.default) == (0, spec["max"], 0)
                continue
            default = action.defaults.get(arg.param, spec["default"])
            if arg.kind in ("int", "double"):
                choices = spec.get("choices")  # a number enum (restore's scale {2, 4}) spans its choices
                low, high = (min(choices), max(choices)) if choices else (spec["min"], spec["max"])
                low = low - 1 if spec.get("nullable") else low
                assert (arg.min, arg.max) == (low, high), arg
                assert arg.default == (arg.null if default is None else default)
            elif arg.kind == "choice":
                assert arg.default == str(default) and str(default) in [nick for nick, _, _ in arg.options]
            elif arg.kind == "boolean":
                assert arg.default is bool(default)
    generate = {a.name: a for a in arguments.for_action(link.BY_KEY["pattern"], schema.op_params("generate"))}
    assert generate["width"].max == schema.op_params("generate")["width"]["max"]
    assert generate["tileable"].default is True  # the pattern action's own default
    seed = next(a for a in arguments.for_action(link.BY_KEY["inpaint"], schema.op_params("inpaint"))
                if a.name == "seed")
    assert (seed.min, seed.default, seed.to_param(-1), seed.to_param(7)) == (-1, -1, None, 7)
    assert "-1 = random" in seed.blurb


def test_gimp_values_become_params_through_the_shared_rules():
    params = schema.op_params("restore")
    args = arguments.for_action(link.BY_KEY["restore"], params)
    assert [a.param for a in args] == [f for f in link.BY_KEY["restore"].fields if f in params]
    config = {a.name: a.default for a in args}
    config.update(task="upscale", scale=4, sigma=12.5)
    values = arguments.read_values(args, config.__getitem__)
    assert values["steps"] is None and values["seed"] is None and values["quality"] is None
    sent = link.build_params(link.BY_KEY["restore"], values, params)
    assert sent["task"] == "upscale" and sent["scale"] == 4 and sent["sigma"] == 12.5 and sent["seed"] is None
    config.update(task="denoise")
    assert "scale" not in link.build_params(link.BY_KEY["restore"], arguments.read_values(args, config.get), params)


def test_number_choices_and_open_ranges_still_give_usable_arguments():
    scale = arguments.argument("scale", {"type": "enum", "default": 2, "choices": [2, 4], "doc": "factor"})
    assert (scale.kind, scale.min, scale.max, scale.default) == ("int", 2, 4, 2) and "(2, 4)" in scale.blurb
    with pytest.raises(ValueError, match="one of 2, 4"):
        link.schema.coerce(3, {"type": "enum", "choices": [2, 4]})
    method = arguments.argument("method", {"type": "enum", "default": "patch", "choices": ["diffusion", "patch"]})
    assert method.kind == "choice" and method.default == "patch" and method.to_param("diffusion") == "diffusion"
    assert dict((n, label) for n, label, _ in method.options)["patch"].startswith("Patch")
    sigma = arguments.argument("sigma", {"type": "float", "default": None, "min": 0.0, "nullable": True})
    assert (sigma.kind, sigma.min, sigma.default, sigma.max) == ("double", -1.0, -1.0, arguments.FLOAT_LIMIT)
    name = arguments.argument("style_model", {"type": "str", "default": None, "nullable": True})
    assert (name.kind, name.default, name.to_param("")) == ("string", "", None)


def test_layer_names_show_the_seed_the_engine_used():
    inpaint, restore = link.BY_KEY["inpaint"], link.BY_KEY["restore"]
    assert link.layer_name(inpaint, {"strength": 1.0, "seed": None}, {"seed": 7}) == "Sfumato Inpaint (strength 1, seed 7)"
    assert link.layer_name(inpaint, {"strength": 0.8, "seed": 5}, {}) == "Sfumato Inpaint (strength 0.8, seed 5)"
    assert link.layer_name(restore, {"task": "upscale", "scale": 2}, {"seed": 3}, variant=1) == \
        "Sfumato Restore #2 (upscale x2, seed 3)"
    assert link.layer_name(link.BY_KEY["pattern"], {"tileable": True}, None) == "Sfumato Generate pattern (tileable)"
    assert link.layer_name(link.BY_KEY["stylize"], {"style_model": "oil", "strength": 0.45}, {"seed": 1}) == \
        "Sfumato Stylize (style oil, strength 0.45, seed 1)"
    assert link.group_name(inpaint, {"seed": None}, {"seed": 9}, 3) == "Sfumato Inpaint: 3 variants (seed 9)"
    a = link.Array((1, 1, 1), "u8", b"\0")
    assert [n for n, _ in link.ordered_outputs({"image_10": a, "image_2": a, "image": a, "mask": a, "imagex": a})] \
        == ["image", "image_2", "image_10"]


@pytest.mark.parametrize("dtype,np_dtype,opaque", [("u8", "<u1", 255), ("u16", "<u2", 65535), ("f32", "<f4", 1.0)])
def test_transparent_area_is_the_mask_without_a_selection(dtype, np_dtype, opaque):
    layer = np.full((20, 30, 4), opaque, np_dtype)
    layer[5:8, 10:14, 3] = 0
    layer[8, 12, 3] = opaque / 2 if dtype == "f32" else opaque // 2
    bbox, mask = link.transparent_area(layer.tobytes(), link.Box(100, 50, 30, 20), dtype)
    assert bbox == link.Box(110, 55, 4, 4)
    m = np.frombuffer(mask, np.uint8).reshape(20, 30)
    assert (m[5:8, 10:14] == 255).all() and 126 <= m[8, 12] <= 128 and int(m.sum()) == 255 * 12 + int(m[8, 12])
    full = np.full((2, 2, 4), opaque, np_dtype).tobytes()
    assert link.transparent_area(full, link.Box(0, 0, 2, 2), dtype)[0] is None
    err = link.needs_selection(link.BY_KEY["remove"])
    assert err.code == "bad_selection" and "select the area to remove" in str(err)
