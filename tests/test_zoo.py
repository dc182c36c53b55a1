"""The model zoo with the real checkpoints of ../shared/models (Real-ESRGAN x4plus and Compact,
DnCNN sigma 25), through the real engine. Skipped with the reason when the folder or the
`zoo` extra is missing; the refusal of pickled models and the missing-extra message run always."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from degrade import psnr
from engine import images
from engine.client import Client, EngineClientError
from engine.registry import ModelRegistry
from engine.zoo.checkpoint import CheckpointError, read_state

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
FILES = {"realesrgan-x4plus": "realesrgan-x4plus.safetensors", "compact": "realesr-animevideov3-x4.pth",
         "dncnn_25": "dncnn_25.pth"}
needs_zoo = pytest.mark.usefixtures("zoo_extra")


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory) -> Path:
    if not all((SHARED_MODELS / f).is_file() for f in FILES.values()):
        pytest.skip(f"real checkpoints not found in {SHARED_MODELS}")
    root = tmp_path_factory.mktemp("zoo")
    for name, file in FILES.items():
        (root / (name + Path(file).suffix)).symlink_to(SHARED_MODELS / file)
    return root


@pytest.fixture(scope="module")
def client(zoo_extra, zoo_dir):
    with Client.in_process(models_dir=zoo_dir, device="cpu", timeout=300) as c:
        yield c


def photo(h: int, w: int, y: int = 0, x: int = 0) -> np.ndarray:
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[y:y + h, x:x + w])


def test_a_pickled_whole_model_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(torch.nn.Conv2d(3, 3, 3), path)
    with pytest.raises(CheckpointError, match="whole.pth.*pickled"):
        read_state(path)


def test_without_the_extra_the_listing_says_how_to_enable_it(tmp_path):
    from engine.zoo.backend import available

    if available():
        pytest.skip("only without the zoo extra")
    torch.save({"w": torch.zeros(1)}, tmp_path / "m.pth")
    (entry,) = ModelRegistry(tmp_path).list()
    assert entry["kind"] == "zoo" and "sfumato[zoo]" in entry["error"]


@needs_zoo
def test_checkpoints_are_described(client):
    models = {m["name"]: m for m in client.models()}
    x4 = models["realesrgan-x4plus"]
    assert (x4["architecture"], x4["purpose"], x4["scale"], x4["dtype"]) == ("ESRGAN", "upscale", 4, "float16")
    assert x4["parameters"] == 16697987 and x4["serves"] == {"restore": ["upscale"]}
    dn = models["dncnn_25"]
    assert (dn["architecture"], dn["purpose"], dn["scale"], dn["channels"]) == ("DnCNN", "denoise", 1, 1)
    assert dn["serves"] == {"restore": ["denoise"]}


@needs_zoo
def test_dncnn_denoises_a_grey_image_above_29_db(client):
    from skimage import data
    clean = data.camera()[64:192, 200:328].astype(np.float64)
    noisy = clean + np.random.default_rng(0).normal(0, 25, clean.shape)
    img = np.repeat(np.clip(np.round(noisy), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    out = client.restore(img, task="denoise", model="dncnn_25")
    assert out.shape == img.shape and np.array_equal(out[..., 0], out[..., 1])
    before, after = psnr(clean, img[..., 0].astype(np.float64)), psnr(clean, out[..., 0].astype(np.float64))
    assert before < 21 and after > 29, (before, after)


@needs_zoo
def test_a_greyscale_model_denoises_each_colour_channel_as_its_own_grey_picture(client):
    """A colour picture runs the one-channel model per channel; a grey one runs it once (same result)."""
    rng = np.random.default_rng(1)
    colour = np.clip(photo(32, 40, 60, 90).astype(np.float64) + rng.normal(0, 25, (32, 40, 3)), 0, 255).astype(np.uint8)
    out = client.restore(colour, task="denoise", model="dncnn_25")
    for c in range(3):
        grey = np.repeat(colour[..., c:c + 1], 3, axis=-1)
        alone = client.restore(grey, task="denoise", model="dncnn_25")
        assert np.abs(alone[..., 0].astype(int) - out[..., c]).max() <= 1
    assert not np.array_equal(out[..., 0], out[..., 2])


@needs_zoo
def test_realesrgan_equals_spandrels_own_forward_pass(client, zoo_dir):
    img = photo(40, 48, 100, 180)
    res = client.run("restore", {"image": img}, {"task": "upscale", "scale": 4, "model": "realesrgan-x4plus"})
    assert res.image.shape == (160, 192, 3) and res.meta["architecture"] == "ESRGAN"
    from engine.zoo.backend import spandrel
    model = spandrel().ModelLoader().load_from_file(str(zoo_dir / "realesrgan-x4plus.safetensors")).eval().float()
    ref = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()
    diff = np.abs(res.image.astype(np.float64) - np.round(ref * 255))
    assert diff.max() <= 1, diff.max()


@needs_zoo
def test_tiled_and_untiled_agree_without_seams(client):
    from engine.zoo.checkpoint import load
    from engine.tasks.restore_zoo import apply
    zm = load(SHARED_MODELS / FILES["compact"])
    x = torch.from_numpy(photo(96, 96, 90, 190)).permute(2, 0, 1)[None].float() / 255
    whole = apply(zm, x, "cpu", tile=96)
    seen = []
    tiled = apply(zm, x, "cpu", tile=64, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # A GAN upscaler's output depends on context beyond any practical overlap: a few pixels
    # near the tile boundaries differ by up to ~20 levels, the image as a whole by under half a level.
    diff = (whole - tiled).abs()
    assert diff.mean() < 0.5 / 255 and torch.quantile(diff.flatten(), 0.99) < 4 / 255, diff.mean()
    # no seam: across the tile boundaries the tiled output changes no more than the untiled one
    for dim in (-1, -2):
        steps_tiled = tiled.diff(dim=dim).abs().mean(dim=(0, 1, dim - 1 if dim == -1 else -1))
        steps_whole = whole.diff(dim=dim).abs().mean(dim=(0, 1, dim - 1 if dim == -1 else -1))
        assert float((steps_tiled - steps_whole).max()) < 1 / 255


@needs_zoo
def test_alpha_and_16_bit_are_kept(client):
    rgb = images.to_float(photo(24, 32, 100, 180))
    alpha = np.linspace(0.2, 1, 24 * 32, dtype=np.float32).reshape(24, 32, 1)
    img = images.from_float(np.concatenate([rgb, alpha], -1), np.uint16)
    out = client.restore(img, task="upscale", scale=4, model="compact")
    assert out.shape == (96, 128, 4) and out.dtype == np.uint16
    assert abs(float(out[..., 3].mean()) / 65535 - float(alpha.mean())) < 0.01


@needs_zoo
@pytest.mark.parametrize("params, field, says", [
    ({"task": "denoise", "model": "realesrgan-x4plus"}, "params.task", "upscale with scale 4"),
    ({"task": "upscale", "scale": 2, "model": "realesrgan-x4plus"}, "params.scale", "scale 4"),
    ({"task": "upscale", "scale": 4, "model": "dncnn_25"}, "params.task", "denoise"),
])
def test_a_task_the_model_cannot_do_is_bad_param(client, params, field, says):
    with pytest.raises(EngineClientError) as info:
        client.run("restore", {"image": photo(16, 16)}, params)
    assert info.value.code == "bad_param" and info.value.field == field and says in info.value.message
    assert client.restore(photo(16, 16), task="upscale", scale=4, model="compact").shape == (64, 64, 3)


@needs_zoo
def test_a_zoo_model_is_refused_by_ops_that_need_a_diffusion_model(client):
    mask = np.zeros((16, 16, 1), np.uint8)
    with pytest.raises(EngineClientError) as info:
        client.run("inpaint", {"image": photo(16, 16), "mask": mask}, {"model": "compact"})
    assert info.value.code == "bad_param" and "zoo model" in info.value.message


@needs_zoo
def test_cli_upscales_with_realesrgan(zoo_dir, tmp_path, capsys):
    from PIL import Image
    from engine.cli import main
    Image.fromarray(photo(32, 40, 100, 180)).save(tmp_path / "small.png")
    rc = main(["restore", str(tmp_path / "small.png"), "--task", "upscale", "--scale", "4", "--model",
               "realesrgan-x4plus", "--models", str(zoo_dir), "-o", str(tmp_path / "big.png")])
    assert rc == 0, capsys.readouterr().err
    assert Image.open(tmp_path / "big.png").size == (160, 128)


@needs_zoo
def test_models_add_and_info_from_the_cli(zoo_dir, tmp_path, capsys):
    from engine.cli import main
    folder = tmp_path / "models"
    torch.save(torch.nn.Conv2d(3, 3, 3), tmp_path / "whole.pth")
    assert main(["models", "add", str(tmp_path / "whole.pth"), "--models", str(folder)]) == 1
    assert "whole.pth holds pickled Python objects" in capsys.readouterr().err and not folder.exists()
    assert main(["models", "add", str(zoo_dir / "dncnn_25.pth"), "--name", "dn", "--license", "MIT",
                 "--models", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["dn.json", "dn.pth"]
    assert main(["models", "add", str(zoo_dir / "dncnn_25.pth"), "--name", "dn", "--models", str(folder)]) == 1
    capsys.readouterr()
    assert main(["models", "info", "dn", "--models", str(folder)]) == 0
    out = capsys.readouterr().out
    assert '"architecture": "DnCNN"' in out and '"license": "MIT"' in out
    assert main(["models", "--models", str(folder)]) == 0
    assert "dn: zoo, DnCNN denoise x1" in capsys.readouterr().out


@pytest.mark.parametrize("free,side", [(8 * 2**30, 256), (2**30, 256), (600 * 2**20, 128), (200 * 2**20, 64),
                                       (None, 256)])
def test_cpu_tiles_shrink_when_memory_is_short(monkeypatch, free, side):
    """The tile side follows the memory the system says is available (half of it at most)."""
    from engine.tasks import restore_zoo
    monkeypatch.setattr(restore_zoo, "free_memory", lambda device: free)
    assert restore_zoo.tile_side("cpu", 4, None) == side
    assert restore_zoo.tile_side("cpu", 4, 512) == 128  # a requested tile (output pixels) always wins

