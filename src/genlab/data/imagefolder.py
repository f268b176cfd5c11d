"""Any folder of PNG/JPEG images, decoded once and cached as one uint8 array.

Layout: images in the root's sub-folders are labelled by sub-folder (sorted names are the classes,
searched recursively below each); images directly in the root, with no class sub-folders, are
unlabelled. Each image is converted to grey or RGB, resized so its shorter side is
``image_size`` (bicubic) and centre-cropped square. With ``data.crop`` set, the centred
crop x crop square of source pixels is cut first and that square is resized to ``image_size``
(the DCGAN CelebA recipe: 108 of a 178x218 face); an image smaller than the crop is an error.
Hidden files and folders (``.name``, e.g. macOS ``._x.png`` resource forks) are skipped.

Cache: ``images-KEY.npy`` + ``manifest-KEY.json``, KEY a hash of the settings and of every file's
relative path, size and mtime, so touching, adding or removing a file is noticed on the next run.
It lives in ``data.cache_dir``, else ``ROOT/.genlab-cache/``, else (root not writable)
``$GENLAB_CACHE/imagefolder/<hash of the root>/`` (``genlab.core.io.cache_root``). A current
cache is memory-mapped (copy-on-write) instead of read into a fresh buffer: its pages come from
the OS's file cache, a write to the array never reaches the file, and a second run's cost is
the listing, the key and the train/test split's one copy of the array.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from math import ceil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.Image import DecompressionBombError
from tqdm import tqdm

from genlab.core.config import DataConfig
from genlab.core.errors import ConfigError, DataError
from genlab.core.io import atomic_write, cache_root
from genlab.data.base import DataBundle, image_spec, random_split, register_dataset

EXTENSIONS = (".png", ".jpg", ".jpeg")
CACHE_DIRNAME = ".genlab-cache"
FORMAT_VERSION = 1  # bump when decoding changes, so old caches are rebuilt
DEFAULT_SIZE = 64
DEFAULT_CHANNELS = 3
PROGRESS_MIN = 200  # fewer images decode too fast for a progress bar to help
# What a bad file makes Pillow raise (UnidentifiedImageError is an OSError); SyntaxError is some
# plugins' word for a broken chunk.
DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, DecompressionBombError)
FileEntry = tuple[str, int, int]  # (relative posix path, size in bytes, mtime_ns)


# ----------------------------------------------------------------------------- pure helpers


def centre_box(w: int, h: int, crop: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred crop x crop square of a W x H image, on whole
    pixels (offsets rounded down: ``(W - crop) // 2``)."""
    left, top = (w - crop) // 2, (h - crop) // 2
    return left, top, left + crop, top + crop


def resize_and_crop(
    img: Image.Image, size: int, mode: str, box: tuple[float, ...] | None = None
) -> np.ndarray:
    """PIL image of any size -> uint8 (C, size, size), C = 1 for mode "L", 3 for "RGB", resampled
    bicubic (antialiased when shrinking). The square shown is ``box`` (left, top, right, bottom
    in the image's pixels), by default the centred one of side min(W, H). A box on whole pixels
    is cut before the resize, so its edges are not filtered with the pixels beyond it."""
    if img.mode != mode:
        img = img.convert(mode)
    bicubic = Image.Resampling.BICUBIC
    if box is not None and all(float(v).is_integer() for v in box):
        img = img.crop(tuple(int(v) for v in box)).resize((size, size), bicubic, reducing_gap=3.0)
    else:
        if box is None:
            w, h = img.size
            side = min(w, h)
            left, top = (w - side) / 2, (h - side) / 2
            box = (left, top, left + side, top + side)
        # Crop and resize in one resampling: no rounding of an intermediate size.
        img = img.resize((size, size), bicubic, box=box, reducing_gap=3.0)
    arr = np.asarray(img)  # (S, S) or (S, S, 3)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_image(path: Path, size: int, mode: str, crop: int | None = None) -> np.ndarray:
    """One image file -> uint8 (C, size, size); ``DataError`` naming the file if unreadable, or
    if ``crop`` is set and the image is smaller than crop x crop. JPEGs are decoded at 1/2, 1/4
    or 1/8 scale (cheaply, in the decoder) while the square shown keeps >= ``size`` pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            if crop is not None and (w < crop or h < crop):
                raise DataError(
                    f"image {path} is {w}x{h}, smaller than data.crop={crop}; "
                    "lower data.crop or remove the image"
                )
            want = (size, size) if crop is None else (ceil(w * size / crop), ceil(h * size / crop))
            drafted = img.draft(None, want)  # None, or (mode, (0, 0, W / scale, H / scale))
            shrink = 1.0 if drafted is None else drafted[1][2] / w
            stored = img.size
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # camera photos: upright, as viewers show
            box = None
            if crop is not None:
                if img.size != stored:  # turned a quarter: so is the crop's frame
                    w, h = h, w
                box = tuple(v * shrink for v in centre_box(w, h, crop))
            return resize_and_crop(img, size, mode, box)
    except DECODE_ERRORS as e:
        raise DataError(f"cannot decode image {path}: {e}; delete or replace the file") from None


def cache_key(
    files: Sequence[FileEntry], image_size: int, channels: int, crop: int | None = None
) -> str:
    """sha256 hex of the settings and the listing; equal keys mean the cache is current."""
    settings = {"version": FORMAT_VERSION, "image_size": image_size, "channels": channels}
    if crop is not None:  # absent when unset: caches written before data.crop keep their key
        settings["crop"] = crop
    blob = json.dumps({**settings, "files": [list(f) for f in files]}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def class_of(rel_path: str) -> str | None:
    """The class sub-folder of a path relative to the root, None for a top-level file."""
    head, sep, _ = rel_path.partition("/")
    return head if sep else None


# ----------------------------------------------------------------------------- listing


def _walk(root: Path, skip: set[Path]) -> list[FileEntry]:
    """Every image below ``root`` as (relative posix path, size, mtime_ns), sorted."""
    found: list[FileEntry] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of folders: symlink loops end here
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen or folder.resolve() in skip:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(folder))
        except OSError as e:
            raise DataError(f"cannot list {folder}: {e.strerror or e}; check permissions") from None
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                stack.append(Path(e.path))
            elif e.name.lower().endswith(EXTENSIONS) and e.is_file():
                s = e.stat()
                rel = Path(e.path).relative_to(root).as_posix()
                found.append((rel, s.st_size, s.st_mtime_ns))
    return sorted(found)


def _classes(root: Path, files: list[FileEntry]) -> list[str] | None:
    """Sorted class names, or None for an unlabelled flat folder; a mix of both is an error."""
    top = [f[0] for f in files if class_of(f[0]) is None]
    if not top:
        return sorted({class_of(f[0]) for f in files})  # type: ignore[type-var]
    nested = [f[0] for f in files if class_of(f[0]) is not None]
    if nested:
        raise DataError(
            f"{root} has images both at its top level ({top[0]}) and in sub-folders "
            f"({nested[0]}); put every image in a class sub-folder (labelled) or all of them "
            f"directly in {root} (unlabelled)"
        )
    return None


# ----------------------------------------------------------------------------- cache


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists (creating it if its parent allows) and we may write in it."""
    try:
        existing = folder
        while not existing.exists():  # ask the nearest existing ancestor before creating
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            return False
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        return False


def _home_cache(root: Path) -> Path:
    return cache_root() / "imagefolder" / hashlib.sha256(str(root).encode()).hexdigest()[:16]


def _cache_dirs(root: Path, cache_dir: str | None) -> list[Path]:
    """Where to look for a cache, in order; the first writable one is where a new one goes."""
    if cache_dir:
        return [Path(cache_dir).expanduser().resolve()]
    return [root / CACHE_DIRNAME, _home_cache(root)]


def _names(key: str) -> tuple[str, str]:
    """(array, manifest) file names of a cache entry; derived from the key, never read from a
    manifest, so a doctored manifest cannot point elsewhere."""
    return f"images-{key[:32]}.npy", f"manifest-{key[:32]}.json"


def _load_cache(folder: Path, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached uint8 array of this key, or None if absent, stale or damaged (then rebuilt)."""
    array_name, manifest_name = _names(key)
    try:
        if json.loads((folder / manifest_name).read_text()).get("key") != key:
            return None
        # Copy-on-write map: nothing is read until used, and writing to the array (or to a
        # tensor over it) never reaches the file.
        images = np.load(folder / array_name, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, AttributeError):
        return None
    return images if images.dtype == np.uint8 and images.shape == shape else None


def _save_cache(folder: Path, key: str, images: np.ndarray, manifest: dict) -> None:
    """Array first, manifest last (its presence marks a complete cache); then drop the entries
    this root and these settings left behind under older keys."""
    array_name, manifest_name = _names(key)
    record = json.dumps({**manifest, "key": key}).encode()
    atomic_write(folder / array_name, lambda f: np.save(f, images, allow_pickle=False))
    atomic_write(folder / manifest_name, lambda f: f.write(record))
    same = ("root", "image_size", "channels", "crop")  # an entry older than crop has none
    for old in folder.glob("manifest-*.json"):
        try:
            m = json.loads(old.read_text())
            if m.get("key") != key and all(m.get(k) == manifest[k] for k in same):
                old.unlink()
                (folder / _names(m["key"])[0]).unlink(missing_ok=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # another process's entry, or already gone: not ours to fix


# ----------------------------------------------------------------------------- loader


def _decode_all(
    root: Path, files: list[FileEntry], size: int, mode: str, crop: int | None = None
) -> np.ndarray:
    """Decode every file in parallel (Pillow releases the GIL) -> uint8 (N, C, size, size)."""
    out = np.empty((len(files), len(mode), size, size), np.uint8)  # "L" -> 1, "RGB" -> 3
    extra = {} if crop is None else {"crop": crop}
    decode = partial(decode_image, size=size, mode=mode, **extra)
    quiet = len(files) < PROGRESS_MIN or not sys.stderr.isatty()
    bar = tqdm(total=len(files), desc=f"decoding {root.name}", unit="img", leave=False,
               disable=quiet)  # fmt: skip
    with bar, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        try:
            for i, arr in enumerate(pool.map(decode, [root / f[0] for f in files])):
                out[i] = arr
                bar.update()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a bad file: stop now, not after decoding all
            raise
    return out


def _check_root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise ConfigError(
            "dataset 'imagefolder' needs data.root=DIR, a folder of .png/.jpg images "
            "(one sub-folder per class, or all at the top level for unlabelled data)"
        )
    root = Path(cfg.root).expanduser().resolve()
    if not root.exists():
        raise DataError(f"data.root {root} does not exist; set data.root to a folder of images")
    if not root.is_dir():
        raise DataError(f"data.root {root} is a file, not a folder; set it to a folder of images")
    return root


def load_image_array(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """``cfg.root`` -> (uint8 (N, C, S, S) images, int64 (N,) labels or None, class names or
    None), from the cache when it is current, else decoded and cached."""
    root = _check_root(cfg)
    size, channels = cfg.image_size or DEFAULT_SIZE, cfg.channels or DEFAULT_CHANNELS
    dirs = _cache_dirs(root, cfg.cache_dir)
    files = _walk(root, skip={d.resolve() for d in dirs})
    if not files:
        raise DataError(
            f"no images found under {root} (searched recursively for "
            f"{', '.join(EXTENSIONS)}, any case); set data.root to a folder of images"
        )
    classes = _classes(root, files)
    labels = None
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[class_of(f[0])] for f in files], np.int64)
    key = cache_key(files, size, channels, cfg.crop)
    shape = (len(files), channels, size, size)
    for folder in dirs:
        images = _load_cache(folder, key, shape)
        if images is not None:
            return images, labels, classes
    target = next((d for d in dirs if _writable(d)), None)  # checked before the long decode
    if target is None and cfg.cache_dir:
        raise DataError(f"data.cache_dir {dirs[0]} is not writable; choose another folder")
    images = _decode_all(root, files, size, "L" if channels == 1 else "RGB", cfg.crop)
    if target is not None:  # else nowhere to write: decode again next time
        manifest = {"version": FORMAT_VERSION, "root": str(root), "image_size": size,
                    "channels": channels, "crop": cfg.crop, "classes": classes,
                    "files": files}  # fmt: skip
        _save_cache(target, key, images, manifest)
    return images, labels, classes


@register_dataset(
    "imagefolder",
    uses=("root", "image_size", "channels", "crop", "cache_dir", "test_fraction", "split_seed"),
    help="a folder of PNG/JPEG images in data.root; class sub-folders give labels",
)
def load_imagefolder(cfg: DataConfig) -> DataBundle:
    images, labels, classes = load_image_array(cfg)
    x = torch.from_numpy(images)  # (N, C, S, S) uint8
    y = None if labels is None else torch.from_numpy(labels)
    train, test = random_split(x, y, cfg.test_fraction, cfg.split_seed)
    num_classes = None if classes is None else len(classes)
    return DataBundle("imagefolder", image_spec(x, num_classes, classes), train, test)
