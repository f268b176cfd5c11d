"""File-format datasets, IDX (mnist, fashion_mnist) and imagefolder, on files made in tmp_path."""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.data import idx, imagefolder, load_data

# ----------------------------------------------------------------------------- IDX


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file written by hand from the spec, independent of the parser under test."""
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, np.uint8).tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def make_idx_dir(root: Path, gz: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(50, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 20, dtype=np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        write(root / (stem + (".gz" if gz else "")), idx_bytes(arr))
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_round_trip(tmp_path, gz):
    arrays = make_idx_dir(tmp_path, gz=gz)
    data = load_data(DataConfig(name="mnist", root=str(tmp_path)))
    assert data.train.x.shape == (50, 1, 28, 28) and data.test.x.shape == (20, 1, 28, 28)
    assert data.train.x.dtype == data.test.x.dtype == torch.uint8
    assert data.train.y.dtype == data.test.y.dtype == torch.int64
    np.testing.assert_array_equal(data.train.x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train.y.numpy(), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test.y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert data.spec.shape == (1, 28, 28) and data.spec.num_classes == 10
    assert data.spec.class_names == tuple("0123456789")


def test_fashion_mnist_names_and_resize(tmp_path):
    make_idx_dir(tmp_path, gz=True)
    data = load_data(DataConfig(name="fashion_mnist", root=str(tmp_path), image_size=16))
    assert data.train.x.shape == (50, 1, 16, 16) and data.test.x.shape == (20, 1, 16, 16)
    assert data.spec.shape == (1, 16, 16)
    assert data.spec.class_names[0] == "T-shirt/top" and data.spec.class_names[9] == "Ankle boot"
    assert len(data.spec.class_names) == 10


def test_raw_file_preferred_over_gz(tmp_path):
    arrays = make_idx_dir(tmp_path, gz=False, seed=0)
    make_idx_dir(tmp_path, gz=True, seed=1)  # different pixels under the .gz names
    data = load_data(DataConfig(name="mnist", root=str(tmp_path)))
    np.testing.assert_array_equal(data.train.x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])


def test_read_idx_shapes(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = idx.read_idx(write(tmp_path / "a.gz", idx_bytes(arr)))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_array_equal(
        idx.read_idx(write(tmp_path / "b", idx_bytes(arr[0, 0]))), [0, 1, 2, 3]
    )


IMAGES, LABELS = "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
GOOD_IMAGES = np.zeros((50, 28, 28), np.uint8)
GOOD_LABELS = np.zeros(20, np.uint8)
# case -> (file to overwrite, its new bytes, pattern the one-line message must also contain)
BAD_FILES = {
    "magic": (IMAGES, b"\x12\x34\x56\x78" + bytes(100), "0x12345678.*expected 0x0000080N"),
    "gzip_without_suffix": (IMAGES, gzip.compress(idx_bytes(GOOD_IMAGES)), "add a .gz suffix"),
    "type_code": (IMAGES, idx_bytes(GOOD_IMAGES, code=0x0D), "type 0x0D.*float32"),
    "short_header": (IMAGES, b"\x00\x00", "truncated"),
    "header_cut": (IMAGES, idx_bytes(GOOD_IMAGES)[:9], "truncated.*needs 16 bytes"),
    "truncated": (IMAGES, idx_bytes(GOOD_IMAGES)[:-5], f"needs {50 * 784} data bytes, found"),
    "trailing": (LABELS, idx_bytes(GOOD_LABELS) + b"xyz", "3 extra bytes"),
    "images_not_3d": (IMAGES, idx_bytes(np.zeros((50, 784), np.uint8)), "2-D.*expected 3-D"),
    "labels_not_1d": (LABELS, idx_bytes(np.zeros((20, 1), np.uint8)), "expected 1-D"),
    "zero_images": (IMAGES, idx_bytes(np.zeros((0, 28, 28), np.uint8)), "zero images"),
    "count_mismatch": (LABELS, idx_bytes(np.zeros(21, np.uint8)), "21 labels.*20 images"),
    "label_range": (LABELS, idx_bytes(np.array([0] * 19 + [10], np.uint8)), "label 10 at index 19"),
}


def check_one_line(err: pytest.ExceptionInfo, *patterns: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for p in patterns:
        assert re.search(p, msg), (p, msg)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_idx_bad_file(tmp_path, case):
    make_idx_dir(tmp_path)
    stem, data, pattern = BAD_FILES[case]
    write(tmp_path / stem, data)
    with pytest.raises(DataError, match=re.escape(stem)) as err:
        load_data(DataConfig(name="mnist", root=str(tmp_path)))
    check_one_line(err, pattern)


@pytest.mark.parametrize("cut", [None, 30], ids=["not_gzip", "cut_short"])
def test_idx_corrupt_gzip(tmp_path, cut):
    make_idx_dir(tmp_path, gz=True)
    path = tmp_path / f"{IMAGES}.gz"
    path.write_bytes(b"not gzip at all" if cut is None else path.read_bytes()[:cut])
    with pytest.raises(DataError, match=re.escape(path.name)) as err:
        load_data(DataConfig(name="fashion_mnist", root=str(tmp_path)))
    check_one_line(err, "not a valid gzip stream")


def test_idx_missing_root_and_files(tmp_path):
    with pytest.raises(DataError, match=r"'mnist' is not in .*genlab data download mnist") as err:
        load_data(DataConfig(name="mnist"))  # nothing downloaded into the session's cache
    check_one_line(err, "data.download=true", "data.root=DIR")
    with pytest.raises(DataError, match=r"nowhere.*does not exist") as err:
        load_data(DataConfig(name="mnist", root=str(tmp_path / "nowhere")))
    check_one_line(err)
    make_idx_dir(tmp_path)
    (tmp_path / LABELS).unlink()
    with pytest.raises(DataError, match=re.escape(LABELS) + r"\[\.gz\]") as err:
        load_data(DataConfig(name="mnist", root=str(tmp_path)))
    check_one_line(err, "train-images-idx3-ubyte, train-labels-idx1-ubyte")


def test_idx_rejects_split_fields(tmp_path):
    with pytest.raises(ConfigError, match=r"data.test_fraction is not used"):
        load_data(DataConfig(name="mnist", root=str(tmp_path), test_fraction=0.2))


# ----------------------------------------------------------------------------- imagefolder


def save(path: Path, size: tuple[int, int], colour, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def folder_cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(name="imagefolder", root=str(root), image_size=kw.pop("image_size", 8), **kw)


@pytest.fixture
def classes_dir(tmp_path) -> Path:
    root = tmp_path / "pics"
    save(root / "cat" / "a.png", (30, 20), (255, 0, 0))
    save(root / "cat" / "sub" / "b.JPEG", (16, 24), (0, 255, 0))
    save(root / "dog" / "c.PNG", (16, 16), 128, mode="L")
    save(root / "dog" / "d.jpg", (9, 9), (0, 0, 255))
    save(root / "dog" / "._d.png", (9, 9), (0, 0, 255)).write_bytes(b"resource fork")  # hidden
    (root / "empty").mkdir()
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder_classes(classes_dir):
    images, labels, classes = imagefolder.load_image_array(folder_cfg(classes_dir))
    assert classes == ["cat", "dog"]
    assert images.shape == (4, 3, 8, 8) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])  # cat/a, cat/sub/b, dog/c, dog/d
    assert (images[0, 0] == 255).all() and (images[0, 1:] == 0).all()  # solid red stays exact
    assert (images[2] == 128).all()  # grey becomes three equal channels
    data = load_data(folder_cfg(classes_dir, test_fraction=0.25))
    assert len(data.train) == 3 and len(data.test) == 1
    assert data.spec.num_classes == 2 and data.spec.class_names == ("cat", "dog")
    assert data.spec.shape == (3, 8, 8)
    assert sorted(data.train.y.tolist() + data.test.y.tolist()) == [0, 0, 1, 1]


def test_imagefolder_unlabelled_and_grey(tmp_path):
    save(tmp_path / "x.png", (12, 10), (200, 100, 50))
    save(tmp_path / "y.jpg", (10, 12), (10, 20, 30))
    data = load_data(folder_cfg(tmp_path, channels=1, test_fraction=0.5))
    assert data.train.y is None and data.test.y is None
    assert data.spec.num_classes is None and data.spec.shape == (1, 8, 8)
    images, _, _ = imagefolder.load_image_array(folder_cfg(tmp_path, channels=1))
    luma = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # ITU-R 601 grey of the PNG
    assert np.abs(images[0].astype(int) - luma).max() <= 1


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_resize_and_crop_keeps_the_centre(mode):
    # 40x20: left and right quarters differ from the middle, which is all a 20x20 crop may show.
    img = Image.new("RGB", (40, 20), (0, 200, 0))
    img.paste((255, 0, 0), (0, 0, 10, 20))
    img.paste((0, 0, 255), (30, 0, 40, 20))
    out = imagefolder.resize_and_crop(img, 20, mode)
    expected = (0, 200, 0) if mode == "RGB" else (round(0.587 * 200),)  # ITU-R 601 luma
    assert out.shape == ((3 if mode == "RGB" else 1), 20, 20) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.reshape(len(mode), -1).T, np.tile(expected, (400, 1)))
    tall = imagefolder.resize_and_crop(img.transpose(Image.Transpose.ROTATE_90), 20, mode)
    np.testing.assert_array_equal(tall, out)  # same rule for a portrait image (rows cut)
    half = imagefolder.resize_and_crop(img, 10, mode)  # downscaled: the middle is still middle
    assert half.shape[1:] == (10, 10) and (half[:, :, 2:8] == out[:, :10, 2:8]).all()


def count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = imagefolder.decode_image

    def counting(path, size, mode):
        calls.append(Path(path).name)
        return real(path, size, mode)

    monkeypatch.setattr(imagefolder, "decode_image", counting)
    return calls


def forbid_decodes(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("decoded although the cache is current")

    monkeypatch.setattr(imagefolder, "decode_image", boom)


def manifests(folder: Path) -> list[Path]:
    return sorted(folder.glob("manifest-*.json"))


def test_cache_reused_and_invalidated(classes_dir, monkeypatch):
    calls = count_decodes(monkeypatch)
    first = imagefolder.load_image_array(folder_cfg(classes_dir))
    assert len(calls) == 4
    cache = classes_dir / ".genlab-cache"
    (manifest,) = manifests(cache)
    record = json.loads(manifest.read_text())
    assert record["image_size"] == 8 and record["channels"] == 3 and len(record["files"]) == 4
    with monkeypatch.context() as m:
        forbid_decodes(m)
        second = imagefolder.load_image_array(folder_cfg(classes_dir))
    np.testing.assert_array_equal(second[0], first[0])
    np.testing.assert_array_equal(second[1], first[1])
    assert second[2] == first[2]

    calls.clear()  # touch: same bytes, new mtime
    st = (classes_dir / "dog" / "c.PNG").stat()
    os.utime(classes_dir / "dog" / "c.PNG", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    imagefolder.load_image_array(folder_cfg(classes_dir))
    assert len(calls) == 4 and len(manifests(cache)) == 1  # the stale entry is gone
    assert len(list(cache.glob("images-*.npy"))) == 1

    calls.clear()  # add
    save(classes_dir / "bird" / "e.png", (8, 8), (1, 2, 3))
    images, labels, classes = imagefolder.load_image_array(folder_cfg(classes_dir))
    assert len(calls) == 5 and classes == ["bird", "cat", "dog"] and labels.tolist()[0] == 0

    calls.clear()  # remove
    (classes_dir / "cat" / "a.png").unlink()
    images, labels, _ = imagefolder.load_image_array(folder_cfg(classes_dir))
    assert len(calls) == 4 and images.shape[0] == 4

    calls.clear()  # other settings: a second entry beside the first
    imagefolder.load_image_array(folder_cfg(classes_dir, image_size=4))
    assert len(calls) == 4 and len(manifests(cache)) == 2


def test_cache_dir_and_read_only_fallback(tmp_path, monkeypatch):
    root = tmp_path / "flat"
    save(root / "a.png", (8, 8), (9, 9, 9))
    cache_dir = root / "cached"  # inside the root, yet never scanned
    save(cache_dir / "stray.png", (8, 8), (0, 0, 0))
    data = load_data(folder_cfg(root, cache_dir=str(cache_dir), test_fraction=0.5))
    assert data.train.y is None and len(data.train) + len(data.test) == 1
    assert len(manifests(cache_dir)) == 1 and not (root / ".genlab-cache").exists()

    other = tmp_path / "ro"
    save(other / "a.png", (8, 8), (9, 9, 9))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: Path(p) != other and real_access(p, m))
    monkeypatch.delenv("GENLAB_CACHE")  # else the cache root (genlab.core.io.cache_root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    imagefolder.load_image_array(folder_cfg(other))
    assert not (other / ".genlab-cache").exists()
    (home,) = (tmp_path / "xdg" / "genlab" / "imagefolder").iterdir()
    assert len(manifests(home)) == 1
    forbid_decodes(monkeypatch)
    imagefolder.load_image_array(folder_cfg(other))

    monkeypatch.setattr(os, "access", lambda p, m: False)
    with pytest.raises(DataError, match=r"data.cache_dir .*elsewhere.* is not writable"):
        imagefolder.load_image_array(folder_cfg(other, cache_dir=str(tmp_path / "elsewhere")))


@pytest.mark.parametrize("bad", [b"\x89PNG not really", "half"], ids=["random", "truncated"])
def test_corrupt_image_named(classes_dir, bad):
    path = classes_dir / "dog" / "broken.png"
    if bad == "half":
        save(path, (64, 64), (5, 6, 7))
        bad = path.read_bytes()[: len(path.read_bytes()) // 2]
    path.write_bytes(bad)
    with pytest.raises(DataError, match=re.escape(str(path))) as err:
        load_data(folder_cfg(classes_dir))
    check_one_line(err, "cannot decode image")


def test_imagefolder_layout_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"needs data.root=DIR"):
        load_data(DataConfig(name="imagefolder"))
    with pytest.raises(DataError, match=r"missing.*does not exist") as err:
        load_data(folder_cfg(tmp_path / "missing"))
    check_one_line(err)
    not_dir = tmp_path / "file.png"
    not_dir.write_bytes(b"")
    with pytest.raises(DataError, match="not a folder"):
        load_data(folder_cfg(not_dir))
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"no images found under .*empty.*\.png, \.jpg") as err:
        load_data(folder_cfg(empty))
    check_one_line(err)
    mixed = tmp_path / "mixed"
    save(mixed / "top.png", (8, 8), (1, 1, 1))
    save(mixed / "cls" / "low.png", (8, 8), (1, 1, 1))
    with pytest.raises(DataError, match=r"top.png.*cls/low.png") as err:
        load_data(folder_cfg(mixed))
    check_one_line(err, "both at its top level")


def test_cache_key_covers_listing_and_settings():
    files = [("a.png", 10, 1), ("b/c.jpg", 20, 2)]
    key = imagefolder.cache_key(files, 64, 3)
    assert key == imagefolder.cache_key(list(files), 64, 3) and len(key) == 64
    changed = [files[0], ("b/c.jpg", 20, 3)]
    others = [changed, files[:1], [*files, ("d.png", 1, 1)]]
    assert all(imagefolder.cache_key(f, 64, 3) != key for f in others)
    assert imagefolder.cache_key(files, 32, 3) != key and imagefolder.cache_key(files, 64, 1) != key


@pytest.mark.parametrize(
    ("name", "first_class"), [("mnist", "0"), ("fashion_mnist", "T-shirt/top"), ("kmnist", "o")]
)
def test_every_idx_dataset_reads_the_same_files_with_its_class_names(tmp_path, name, first_class):
    arrays = make_idx_dir(tmp_path, gz=True)
    data = load_data(DataConfig(name=name, root=str(tmp_path)))
    np.testing.assert_array_equal(data.train.x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert data.spec.class_names[0] == first_class and len(data.spec.class_names) == 10
