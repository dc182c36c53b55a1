"""Model folders: the registry loads a trained model; broken files give clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.diffusion.architectures import ARCHITECTURES, detect
from engine.diffusion.denoiser import Denoiser, make_cond
from engine.diffusion.modelfile import CARD, WEIGHTS, ModelFileError, load_model, read_card, save_model
from engine.diffusion.schedule import EDM
from engine.errors import MODEL_MISSING, EngineError
from engine.registry import ModelRegistry

BUILTIN = Path(__file__).resolve().parents[1] / "models" / "builtin"


def _copy(models_dir: Path, tmp_path: Path, name: str) -> Path:
    root = tmp_path / "models"
    shutil.copytree(models_dir / "builtin", root / name)
    return root


def test_registry_loads_the_trained_model(tiny_models_dir: Path) -> None:
    reg = ModelRegistry(tiny_models_dir, device="cpu")
    assert "builtin" in reg.names()
    den = reg.get("builtin")
    assert isinstance(den, Denoiser) and not den.training
    assert reg.get() is den  # cached
    card = reg.card("builtin")
    assert card["steps"] == 60 and card["parameters"] == sum(p.numel() for p in den.parameters())
    entry = next(e for e in reg.list() if e["name"] == "builtin")
    assert entry["loaded"] and entry["kind"] == "base"
    x = torch.zeros(1, 3, 20, 28)  # not a multiple of the stride: padded inside
    with torch.inference_mode():
        out = den(x, 0.5, make_cond(None, None, x))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_save_load_roundtrip_keeps_the_function(tmp_path: Path) -> None:
    cfg = {"channels": [8, 16], "down_blocks": [1, 1], "up_blocks": [1, 1], "emb_dim": 16, "groups": 4}
    den = Denoiser.build("unet", cfg)
    with torch.no_grad():
        for p in den.parameters():
            p.normal_(0, 0.1)
    save_model(den, tmp_path / "m", {"name": "m", "steps": 3}, dtype=torch.float32)
    back, card = load_model(tmp_path / "m")
    assert card["config"]["channels"] == [8, 16] and card["steps"] == 3
    x = torch.randn(2, 3, 16, 16)
    cond = make_cond(None, None, x)
    with torch.no_grad():
        assert torch.allclose(den.eval()(x, 0.7, cond), back(x, 0.7, cond), atol=1e-6)
    assert load_file(str(tmp_path / "m" / WEIGHTS))  # plain safetensors, no code
    assert card["architecture"] == "unet" and back.descriptor == den.descriptor


def test_the_loaded_model_carries_its_descriptor() -> None:
    """What operations read from a model: the shipped card's UNet, described by its registry entry."""
    den, card = load_model(BUILTIN)
    d = den.descriptor
    assert card["architecture"] == d.architecture == "unet" and set(ARCHITECTURES) >= {"unet"}
    assert d.stride == 2 ** (len(card["config"]["channels"]) - 1) == 8
    assert d.padding_mode == "zeros" and "circular" in d.padding_modes and d.cond_channels == 4
    assert d.sigmas == EDM and (d.sigmas.sigma_min, d.sigmas.sigma_max, d.sigmas.rho) == (0.002, 80.0, 7.0)
    assert d.sigma_data == card["sigma_data"] and d.precisions[0] == "float32"
    assert d.autocast_dtype("cpu") is None and d.autocast_dtype("cuda") == torch.bfloat16


def test_a_card_without_architecture_is_recognised_from_the_weights(tmp_path: Path) -> None:
    """Weights with a bare card: the registry detects the architecture and config from the tensors."""
    root = _copy(BUILTIN.parent, tmp_path, "bare")
    card_path = root / "bare" / CARD
    card = json.loads(card_path.read_text())
    arch, config = detect(load_file(str(root / "bare" / WEIGHTS)))
    assert arch.name == "unet" and config == {k: v for k, v in card["config"].items() if k != "groups"}
    card_path.write_text(json.dumps({k: v for k, v in card.items() if k not in ("architecture", "config")}))
    bare, _ = load_model(root / "bare")
    full, _ = load_model(BUILTIN)
    x = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    cond = make_cond(None, None, x)
    with torch.no_grad():
        assert torch.equal(bare(x, 0.3, cond), full(x, 0.3, cond))
    with pytest.raises(ValueError, match="none of the known architectures"):
        detect({"some.weight": torch.zeros(1)})
    card_path.write_text(json.dumps({**card, "architecture": "transformer"}))
    with pytest.raises(ModelFileError, match="unknown architecture 'transformer'.*unet"):
        load_model(root / "bare")


def test_missing_model_is_model_missing_with_a_hint(tiny_models_dir: Path) -> None:
    reg = ModelRegistry(tiny_models_dir)
    with pytest.raises(EngineError) as err:
        reg.get("no_such_model")
    assert err.value.code == MODEL_MISSING
    assert "no_such_model" in err.value.message and WEIGHTS in err.value.message
    assert "builtin" in err.value.message  # lists what is installed


def test_corrupt_weights_are_a_clear_error(tiny_models_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_models_dir, tmp_path, "broken")
    (root / "broken" / WEIGHTS).write_bytes(b"\x00garbage, not a safetensors file" * 10)
    with pytest.raises(ModelFileError, match="corrupt or not safetensors"):
        load_model(root / "broken")
    reg = ModelRegistry(root)
    with pytest.raises(EngineError) as err:
        reg.get("broken")
    assert err.value.code == MODEL_MISSING and "broken" in err.value.message


def test_truncated_weights_are_a_clear_error(tiny_models_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_models_dir, tmp_path, "cut")
    path = root / "cut" / WEIGHTS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(root / "cut")


def test_weights_that_do_not_match_the_card(tiny_models_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_models_dir, tmp_path, "mismatch")
    card_path = root / "mismatch" / CARD
    card = json.loads(card_path.read_text())
    card["config"]["channels"] = [16, 32, 32, 32]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="do not match the card's architecture"):
        load_model(root / "mismatch")
    # a tensor missing from the file is a mismatch too
    root2 = _copy(tiny_models_dir, tmp_path / "b", "partial")
    w = root2 / "partial" / WEIGHTS
    state = load_file(str(w))
    state.pop(sorted(state)[0])
    save_file(state, str(w))
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(root2 / "partial")


def test_bad_or_missing_cards(tiny_models_dir: Path, tmp_path: Path) -> None:
    root = _copy(tiny_models_dir, tmp_path, "card")
    card_path = root / "card" / CARD
    card_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_card(root / "card")
    card_path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="format"):
        read_card(root / "card")
    # the registry lists the broken folder with its error instead of failing to start
    reg = ModelRegistry(root)
    entry = next(e for e in reg.list() if e["name"] == "card")
    assert "format" in entry["error"]
    with pytest.raises(ModelFileError, match="weights missing"):
        (root / "card" / WEIGHTS).unlink()
        card_path.write_text(json.dumps({"format": "sfumato-denoiser-v1", "config": {}}))
        load_model(root / "card")
    with pytest.raises(ModelFileError, match="card missing"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["builtin", "smooth_blobs"])
def test_the_committed_tiny_models_load_with_todays_code_and_match_their_recipes(name: str, tmp_path: Path) -> None:
    """The suite uses committed tiny models (tests/tiny_model.py): a change of the model file
    format, the architecture or a recipe fails here first (fix: `.venv/bin/python tests/tiny_model.py`)."""
    from tiny_model import FIXTURES, TINY_ARCH, blobs_config, tiny_config

    den, card = load_model(FIXTURES[name][1])
    assert {k: card["config"][k] for k in TINY_ARCH} == TINY_ARCH
    recipe = tiny_config(tmp_path / "x") if name == "builtin" else blobs_config(tmp_path / "x", tmp_path / "data")
    for field in ("steps", "patch", "batch", "lr", "warmup", "synthetic", "seed", "architecture", "mask_weights", "ema"):
        assert card["recipe"][field] == getattr(recipe, field), field
    assert sum(p.numel() for p in den.parameters()) == card["parameters"]
