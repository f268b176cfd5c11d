"""Loader benchmark (``genlab bench --loader``): what a folder of images costs before and during
training. Cold load (list, decode every file, write the uint8 cache, split), warm load (the same
call again: the cache is current, so it is memory-mapped instead of decoded), the batch stream's
seconds per batch (index the uint8 split, convert to [-1, 1] floats) and, beside it, one
training step of a model at the same batch size, so the data time is a measured share of a step.

The cache goes to a temporary folder made for the run, so the cold figure is a real decode
whatever caches the folder already has. The files read are those just listed, typically in
the OS's file cache (a freshly generated folder always is): the cold figure is decode-bound,
not disk-bound. ``synthetic_folder`` writes deterministic 178x218 JPEGs (the aligned CelebA
size) for a benchmark without a dataset."""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from genlab.core import hardware
from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.tools.bench import bench_model
from genlab.training.batches import BatchStream

SYNTHETIC_SIZE = (178, 218)  # (W, H) of an aligned CelebA image
JPEG_QUALITY = 90
CAPABILITY_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")  # what caps torch's kernels


@lru_cache(maxsize=4)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)  # (y, x), each (H, W)


def synthetic_image(index: int, seed: int = 0, size: tuple[int, int] = SYNTHETIC_SIZE):
    """A deterministic photo-like RGB image: a smooth two-colour ground, a bright ellipse at a
    jittered centre and mild grain, so that its JPEG is about as large (and as slow to decode)
    as a face photo of the same size (~10 KB at 178x218), not a flat, trivially compressed one."""
    w, h = size
    rng = np.random.default_rng([seed, index])
    yy, xx = _grid(w, h)
    a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    t = (xx * (rng.uniform(0.3, 1) / w) + yy * (rng.uniform(0.3, 1) / h))[..., None] / 2
    img = a * (1 - t) + b * t  # (H, W, 3)
    cx, cy = w / 2 + rng.normal(0, w / 20), h / 2 + rng.normal(0, h / 20)
    inside = ((xx - cx) / (w * 0.3)) ** 2 + ((yy - cy) / (h * 0.35)) ** 2 < 1
    img[inside] = 0.4 * img[inside] + 0.6 * rng.uniform(150, 255, 3).astype(np.float32)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 6
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def synthetic_folder(folder: str | Path, n: int, *, seed: int = 0) -> Path:
    """Write ``n`` synthetic JPEGs (``000000.jpg`` ...) into ``folder``, encoded in parallel."""
    if n < 1:
        raise ConfigError(f"--generate needs a number of images >= 1, got {n}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        synthetic_image(i, seed).save(folder / f"{i:06d}.jpg", quality=JPEG_QUALITY)

    bar = tqdm(total=n, desc="writing JPEGs", unit="img", leave=False, disable=None)
    with bar, ThreadPoolExecutor(max_workers=hardware.usable_cores()) as pool:
        for _ in pool.map(write, range(n)):
            bar.update()
    return folder


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _data_seconds(split, batch_size: int, batches: int, seed: int) -> float:
    """Mean seconds of one ``next`` of the trainer's batch stream (CPU), after one warm-up."""
    stream = BatchStream(split, batch_size, seed, torch.device("cpu"))
    next(stream)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return (time.perf_counter() - t0) / batches


def bench_loader(
    root: str | Path | None = None,
    *,
    generate: int | None = None,
    model: str = "dcgan",
    batch_size: int = 128,
    image_size: int = 64,
    data_overrides: list[str] | None = None,
    batches: int = 50,
    steps: int = 2,
    warmup: int = 1,
    rounds: int = 1,
    device: str = "cpu",
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Time loading the image folder ``root`` (or ``generate`` synthetic JPEGs written to a
    temporary folder first, untimed) cold and warm, the batch stream per batch on the CPU, and
    (``bench_model``, best of ``rounds``) one training step of ``model`` at ``batch_size`` and
    ``image_size`` on ``device``. ``data_overrides`` (``data.crop=108``) refine the
    imagefolder config; ``overrides`` the timed step. Returns one flat dict of figures."""
    if (root is None) == (generate is None):
        raise ConfigError("the loader benchmark needs a folder: --data-root DIR or --generate N")
    if generate is not None:
        with tempfile.TemporaryDirectory(prefix="genlab-bench-images-") as tmp:
            synthetic_folder(tmp, generate)
            result = bench_loader(
                tmp, model=model, batch_size=batch_size, image_size=image_size,
                data_overrides=data_overrides, batches=batches, steps=steps, warmup=warmup,
                rounds=rounds, device=device, overrides=overrides,
            )  # fmt: skip
        return {**result, "generated": True}
    with tempfile.TemporaryDirectory(prefix="genlab-bench-cache-") as cache:
        cfg = _loader_config(model, root, image_size, cache, data_overrides or [])
        cold, cold_s = _timed(lambda: load_data(cfg))
        warm, warm_s = _timed(lambda: load_data(cfg))
        cache_bytes = sum(p.stat().st_size for p in Path(cache).iterdir())
        if len(warm.train) < batch_size:
            raise ConfigError(
                f"--batch-size {batch_size} is larger than the training split of {root} "
                f"({len(warm.train)} images); lower it or use more images"
            )
        data_s = _data_seconds(warm.train, batch_size, batches, seed=0)
        images = len(cold.train) + len(cold.test)
        del cold, warm  # the arrays, and the map of the cache, before the folder goes
    row = bench_model(
        model, batch_size=batch_size, image_size=image_size, steps=steps, warmup=warmup,
        rounds=rounds, device=device, overrides=overrides,
    )  # fmt: skip
    step_s = row["step_ms"] / 1e3
    return {
        "images": images,
        "generated": False,
        "image_size": image_size,
        "crop": cfg.crop,
        "channels": cfg.channels or 3,
        "cache_mib": round(cache_bytes / 2**20, 3),
        "cold_load_s": round(cold_s, 3),
        "decode_images_per_s": round(images / cold_s, 1),
        "warm_load_s": round(warm_s, 3),
        "batch_size": batch_size,
        "data_ms_per_batch": round(data_s * 1e3, 3),
        "model": model,
        "step_ms": row["step_ms"],
        "data_percent_of_step": round(100 * data_s / step_s, 3),
        "cpu": hardware.cpu_name(),
        "cpu_capability": hardware.cpu_capability(),
        "capability_env": {k: os.environ[k] for k in CAPABILITY_ENV if k in os.environ},
        "threads": torch.get_num_threads(),
    }


def _loader_config(model: str, root, image_size: int, cache: str, overrides: list[str]):
    """The imagefolder config of the benchmark: ``overrides`` beside the root, the size and the
    temporary cache, which they may not replace (a reused cache would make "cold" warm)."""
    fixed_by = {"data.root": "--data-root", "data.image_size": "--image-size",
                "data.cache_dir": "a temporary folder (so that cold is cold)"}  # fmt: skip
    for key in (o.partition("=")[0] for o in overrides):
        if key in fixed_by:
            raise ConfigError(f"bench --loader sets {key} from {fixed_by[key]}; leave it out")
    fixed = [f"data.root={root}", f"data.image_size={image_size}", f"data.cache_dir={cache}"]
    return build_config(model, data="imagefolder", overrides=[*overrides, *fixed]).data


def loader_table(r: dict[str, Any]) -> str:
    """The figures of ``bench_loader`` as a small two-column text table."""
    batch = f"batch {r['batch_size']}"
    rows = [
        ("images", f"{r['images']:,} ({r['cache_mib']:,.1f} MiB of uint8)"),
        ("image size / crop", f"{r['image_size']} px / {r['crop'] or 'none'}"),
        ("cold load (decode + cache)", f"{r['cold_load_s']:.2f} s"),
        ("decode rate", f"{r['decode_images_per_s']:,.0f} images/s"),
        ("warm load (mapped cache)", f"{r['warm_load_s']:.3f} s"),
        ("data per batch", f"{r['data_ms_per_batch']:.2f} ms ({batch})"),
        ("train step", f"{r['step_ms']:,.0f} ms ({r['model']}, {batch})"),
        ("data / step", f"{r['data_percent_of_step']:.3f} %"),
        ("machine", f"{r['cpu']}, {r['cpu_capability']}, {r['threads']} threads"),
    ]
    return "\n".join(f"{label:<27} {value}" for label, value in rows)
