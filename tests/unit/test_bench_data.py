"""The loader benchmark (``genlab.tools.bench_data``, ``genlab bench --loader``): every figure is
there and positive, on tiny folders; no speed is asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genlab.core.errors import ConfigError
from genlab.tools.bench_data import bench_loader, loader_table, synthetic_image

TINY = ["model.g_width=8", "model.d_width=8", "model.latent_dim=4"]  # a fast DCGAN step
FIGURES = ("cold_load_s", "warm_load_s", "data_ms_per_batch", "step_ms", "data_percent_of_step",
           "decode_images_per_s", "cache_mib")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for i in range(50):
        synthetic_image(i, size=(24, 30)).save(root / f"{i:03d}.jpg")
    return root


def test_bench_loader_figures(tiny_folder):
    kw = dict(batch_size=8, image_size=16, batches=3, steps=1, warmup=0, overrides=TINY)
    result = bench_loader(tiny_folder, data_overrides=["data.crop=20"], **kw)
    assert result["images"] == 50 and result["crop"] == 20 and result["generated"] is False
    assert result["batch_size"] == 8 and result["image_size"] == 16 and result["model"] == "dcgan"
    assert all(result[k] > 0 for k in FIGURES), {k: result[k] for k in FIGURES}
    assert result["cpu_capability"] and result["threads"] >= 1
    assert not (tiny_folder / ".genlab-cache").exists()  # the cache went to a temporary folder
    table = loader_table(result)
    assert "cold load" in table and "warm load" in table and "data / step" in table


def test_synthetic_images_are_deterministic():
    a, b = np.asarray(synthetic_image(3)), np.asarray(synthetic_image(3))
    assert a.shape == (218, 178, 3) and (a == b).all()
    assert not (a == np.asarray(synthetic_image(4))).all()


def test_bench_loader_errors(tiny_folder):
    with pytest.raises(ConfigError, match="--data-root DIR or --generate N"):
        bench_loader()
    with pytest.raises(ConfigError, match=r"sets data\.cache_dir from a temporary folder"):
        bench_loader(tiny_folder, data_overrides=["data.cache_dir=/elsewhere"])
    with pytest.raises(ConfigError, match="larger than the training split"):
        bench_loader(tiny_folder, batch_size=64, image_size=16)


def test_cli_loader_generates_a_folder(cli):
    argv = ["--loader", "--generate", "24", "--batch-size", "8", "--image-size", "16",
            "--steps", "1", "--warmup", "0", "data.crop=108", *TINY]  # fmt: skip
    code, out, err = cli("bench", *argv)
    assert code == 0, err
    result = json.loads(out)
    assert result["generated"] is True and result["images"] == 24 and result["crop"] == 108
    assert result["cold_load_s"] > 0 and "data / step" in err
    code, _, err = cli("bench", "--generate", "4")
    assert code == 2 and "belong to --loader" in err
