"""The per-operation model pickers of both plug-ins (sfumato_link.models.model_choices), on the
`welcome` a real in-process engine sends for a real models folder: the tiny built-in model, a
style model fine-tuned from it, the real zoo checkpoints of ../shared/models (skipped with the
reason when absent) and an unreadable checkpoint."""
from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))

import sfumato_link as link  # noqa: E402
from sfumato_link.models import can_do, model_choices, pick  # noqa: E402

from engine.server import Engine  # noqa: E402
from engine.zoo.backend import available  # noqa: E402

SHARED_MODELS = ROOT.parent / "shared" / "models"
ZOO_FILES = {"realesrgan-x4plus": "realesrgan-x4plus.safetensors", "compact": "realesr-animevideov3-x4.pth",
             "dncnn_25": "dncnn_25.pth"}


def _welcome(models: Path) -> dict:
    engine = Engine(bind="tcp://127.0.0.1:*", models_dir=models, device="cpu").start()
    session = link.Session(link.ZmqTransport(engine.address), client="picker-test")
    try:
        return session.hello()
    finally:
        session.close()
        engine.stop()


def _diffusion_models(tiny_models_dir: Path, models: Path) -> None:
    """builtin (base) and mystyle (a style model: its card names another model as its base)."""
    for name, base in (("builtin", "builtin v4"), ("mystyle", "builtin")):
        shutil.copytree(tiny_models_dir / "builtin", models / name)
        card = json.loads((models / name / "model.json").read_text())
        (models / name / "model.json").write_text(json.dumps({**card, "name": name, "base_model": base}))
    (models / "broken.pth").write_bytes(b"not a checkpoint at all")  # listed with an error


@pytest.fixture(scope="module")
def welcome(tmp_path_factory, tiny_models_dir) -> dict:
    if not all((SHARED_MODELS / f).is_file() for f in ZOO_FILES.values()):
        pytest.skip(f"real checkpoints not found in {SHARED_MODELS}")
    if not available():
        pytest.skip("the zoo extra (spandrel) is not installed")
    models = tmp_path_factory.mktemp("picker_models")
    _diffusion_models(tiny_models_dir, models)
    for name, file in ZOO_FILES.items():
        (models / (name + Path(file).suffix)).symlink_to(SHARED_MODELS / file)
    return _welcome(models)


def names(choices: list[tuple[str, str]]) -> list[str]:
    return [value for value, _ in choices]


def test_the_engine_lists_what_the_picker_filters(welcome):
    listed = {m["name"]: m for m in welcome["models"]}
    assert listed["realesrgan-x4plus"]["serves"] == {"restore": ["upscale"]}
    assert listed["dncnn_25"]["serves"] == {"restore": ["denoise"]}
    assert "error" in listed["broken"] and listed["mystyle"]["kind"] == "style"


def test_restore_offers_diffusion_models_then_every_restore_capable_zoo_model_labelled(welcome):
    choices = model_choices(welcome, "restore")
    assert names(choices) == ["builtin", "mystyle", "compact", "dncnn_25", "realesrgan-x4plus"]
    labels = dict(choices)
    assert labels["realesrgan-x4plus"] == "realesrgan-x4plus (upscale x4, ESRGAN)"
    assert labels["dncnn_25"] == "dncnn_25 (denoise, DnCNN)"
    assert labels["mystyle"] == "mystyle (style)" and labels["builtin"] == "builtin"


def test_restore_with_a_known_task_offers_only_the_zoo_models_that_do_it(welcome):
    assert names(model_choices(welcome, "restore", "upscale", 4)) == ["builtin", "mystyle", "compact",
                                                                      "realesrgan-x4plus"]
    assert names(model_choices(welcome, "restore", "upscale", 2)) == ["builtin", "mystyle"]  # x4 models only do x4
    assert names(model_choices(welcome, "restore", "denoise", 2)) == ["builtin", "mystyle", "dncnn_25"]
    assert names(model_choices(welcome, "restore", "denoise,jpeg")) == ["builtin", "mystyle"]  # none does both
    assert names(model_choices(welcome, "restore", "auto")) == names(model_choices(welcome, "restore"))


def test_unreadable_models_are_never_offered(welcome):
    for op, param in (("restore", "model"), ("inpaint", "model"), ("stylize", "model"), ("stylize", "style_model"),
                      ("generate", "model")):
        assert "broken" not in names(model_choices(welcome, op, param=param))


def test_inpaint_and_the_others_offer_no_restore_checkpoint(welcome):
    for op in ("inpaint", "stylize", "generate"):
        assert names(model_choices(welcome, op)) == ["builtin", "mystyle"]


def test_stylize_style_model_offers_style_models_after_the_empty_choice(welcome):
    choices = model_choices(welcome, "stylize", param="style_model")
    assert choices[0][0] == "" and "reference image" in choices[0][1]
    assert names(choices) == ["", "mystyle"]


def test_inpaint_offers_zoo_models_that_serve_inpaint(welcome):
    """The engine's inpaint takes zoo models once an inpainting checkpoint (LaMa, MI-GAN) serves it;
    no such checkpoint is available here, so the real welcome is edited to say that one does."""
    edited = copy.deepcopy(welcome)
    edited["ops"]["inpaint"]["params"]["model"]["model_kinds"] = ["base", "style", "zoo"]
    entry = next(m for m in edited["models"] if m["name"] == "compact")
    entry.update(serves={"inpaint": ["inpaint"]}, architecture="LaMa")
    choices = model_choices(edited, "inpaint")
    assert names(choices) == ["builtin", "mystyle", "compact"]
    assert dict(choices)["compact"] == "compact (inpaint, LaMa)"
    assert "compact" not in names(model_choices(edited, "restore"))
    # a schema that does not accept zoo models for the op offers none, whatever `serves` says
    edited["ops"]["inpaint"]["params"]["model"]["model_kinds"] = ["base", "style"]
    assert "compact" not in names(model_choices(edited, "inpaint"))


def test_without_an_engine_the_picker_holds_the_schema_default():
    assert model_choices(None, "restore") == [("builtin", "builtin")]
    assert names(model_choices(None, "stylize", param="style_model")) == [""]


def test_pick_keeps_the_current_model_while_it_is_offered(welcome):
    up4 = model_choices(welcome, "restore", "upscale", 4)
    assert pick(up4, "realesrgan-x4plus", "builtin") == "realesrgan-x4plus"
    assert pick(model_choices(welcome, "restore", "upscale", 2), "realesrgan-x4plus", "builtin") == "builtin"
    assert pick([], "x") == ""


def test_can_do_follows_the_engine_rule_for_scale_and_task_lists():
    x4 = {"name": "x", "kind": "zoo", "scale": 4, "serves": {"restore": ["upscale"]}}
    assert can_do(x4, "restore") and can_do(x4, "restore", "Upscale", "4") and can_do(x4, "restore", "auto", 2)
    assert not can_do(x4, "restore", "upscale", 2) and not can_do(x4, "inpaint")
    assert not can_do({"name": "y", "serves": None}, "restore")


def test_a_welcome_without_models_still_offers_the_default(tmp_path):
    choices = model_choices(_welcome(tmp_path), "restore")
    assert choices == [("builtin", "builtin")]
