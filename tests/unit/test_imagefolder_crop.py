"""``data.crop`` of imagefolder: the centred crop x crop square of source pixels, resized to
``data.image_size``; checked against Pillow called directly, with its error, its place in the
cache key, and the ``dcgan_celeba64`` preset trained from the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.core.config import DataConfig, build_config
from genlab.core.errors import DataError
from genlab.data import imagefolder, load_data

W, H = 178, 218  # an aligned CelebA image (img_align_celeba)
SQUARE = 54  # side of the bright centred square: half of a 108 crop


def face(i: int) -> np.ndarray:
    """uint8 (H, W, 3): seeded noise on a dark ground, a bright square at the centre."""
    rng = np.random.default_rng(i)
    img = rng.integers(0, 40, (H, W, 3))
    top, left = (H - SQUARE) // 2, (W - SQUARE) // 2
    img[top : top + SQUARE, left : left + SQUARE] = rng.integers(215, 256, (SQUARE, SQUARE, 3))
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    for i in range(12):
        Image.fromarray(face(i)).save(root / f"{i:06d}.jpg", quality=90)
    return root


def cfg(root: Path, cache: Path, **kw) -> DataConfig:
    kw.setdefault("image_size", 64)
    return DataConfig(name="imagefolder", root=str(root), cache_dir=str(cache), **kw)


def pillow_crop(path: Path, crop: int, size: int) -> np.ndarray:
    """The reference: decode, cut the centred square at whole pixels, resize; (3, size, size)."""
    left, top = (W - crop) // 2, (H - crop) // 2  # 108: (35, 55); 148: (15, 35)
    with Image.open(path) as img:
        cut = img.convert("RGB").crop((left, top, left + crop, top + crop))
    return np.asarray(cut.resize((size, size), Image.Resampling.BICUBIC)).transpose(2, 0, 1)


def count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = imagefolder.decode_image

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imagefolder, "decode_image", counting)
    return calls


@pytest.mark.parametrize("crop", [108, 111])  # 111: odd margins, offsets rounded down
def test_crop_matches_pillow(faces, tmp_path, crop):
    images, labels, classes = imagefolder.load_image_array(cfg(faces, tmp_path, crop=crop))
    assert images.shape == (12, 3, 64, 64) and labels is None and classes is None
    for i, path in enumerate(sorted(faces.iterdir())):
        np.testing.assert_array_equal(images[i], pillow_crop(path, crop, 64))


def test_crop_shows_the_centre(faces, tmp_path):
    cropped, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path, crop=108))
    whole, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path))
    # 54 of 108 px: the square fills the middle half (16..48); uncropped it is 54/178 of 64 px.
    assert cropped[:, :, 20:44, 20:44].min() > 150 and cropped[:, :, :10, :10].max() < 90
    bright = lambda a: (a.mean(axis=(0, 1)) > 128).sum()  # noqa: E731
    assert abs(bright(cropped) - 32**2) < 80 and abs(bright(whole) - 19.4**2) < 80


@pytest.mark.parametrize(("crop", "size"), [(148, 64), (108, 16)])
def test_jpeg_decoded_at_a_reduced_scale_still_matches(faces, tmp_path, crop, size):
    # 148 -> 64: the decoder downscales by 2 first; 108 -> 16: by 4. Same square, resampled.
    images, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path, crop=crop, image_size=size))
    want = np.stack([pillow_crop(p, crop, size) for p in sorted(faces.iterdir())])
    diff = np.abs(images.astype(int) - want)
    assert diff.mean() < 3 and diff.max() < 32  # a 1 px shift of its edge gives > 100


def test_image_smaller_than_the_crop(tmp_path):
    root = tmp_path / "small"
    root.mkdir()
    Image.fromarray(face(0)).save(root / "a.png")
    Image.fromarray(face(1)[:, :100]).save(root / "narrow.png")  # 100x218
    with pytest.raises(DataError) as err:
        load_data(cfg(root, tmp_path / "cache", crop=108))
    message = str(err.value)
    assert "narrow.png is 100x218, smaller than data.crop=108" in message and "\n" not in message
    imagefolder.load_image_array(cfg(root, tmp_path / "cache", crop=100))  # fits exactly


def test_crop_is_part_of_the_cache_key(faces, tmp_path, monkeypatch):
    files = [("a.jpg", 10, 1), ("b.jpg", 20, 2)]
    keys = {imagefolder.cache_key(files, 64, 3, crop) for crop in (None, 108, 148)}
    assert len(keys) == 3
    # A cache written before data.crop existed (no "crop" in its key) stays current.
    old = {"version": imagefolder.FORMAT_VERSION, "image_size": 64, "channels": 3,
           "files": [list(f) for f in files]}  # fmt: skip
    blob = json.dumps(old, separators=(",", ":")).encode()
    assert imagefolder.cache_key(files, 64, 3) == hashlib.sha256(blob).hexdigest()

    calls = count_decodes(monkeypatch)
    first, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path, crop=108))
    again, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path, crop=108))
    assert len(calls) == 12 and isinstance(again, np.memmap)  # the cache, mapped, not decoded
    np.testing.assert_array_equal(again, first)
    other, _, _ = imagefolder.load_image_array(cfg(faces, tmp_path, crop=148))
    assert len(calls) == 24 and not np.array_equal(other, first)
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("manifest-*.json"))]
    assert sorted(r["crop"] for r in records) == [108, 148]


def test_preset_and_cli_run(faces, tmp_path, cli):
    preset = build_config("dcgan", preset="dcgan_celeba64").data
    assert (preset.name, preset.image_size, preset.crop, preset.channels) == (
        "imagefolder", 64, 108, 3,
    )  # fmt: skip
    out = tmp_path / "run"
    code, _, err = cli(
        "train", "dcgan", "--preset", "dcgan_celeba64", "--out", out,
        f"data.root={faces}", f"data.cache_dir={tmp_path / 'cache'}",
        "train.steps=2", "train.batch_size=4",
    )  # fmt: skip
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["crop"] == 108 and (out / "samples" / "step_2.png").is_file()
