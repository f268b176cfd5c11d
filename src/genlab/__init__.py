"""genlab: train, sample, evaluate and explore classic deep generative models.

import genlab
run = genlab.train("vae", data="digits", overrides={"train.steps": 500})
model = genlab.load(run)
images = model.sample(16, generator=torch.Generator().manual_seed(0))  # (16, 1, H, W)
"""

from genlab import data, models  # noqa: F401  (registers datasets and models; genlab.data.download)
from genlab.api import evaluate, load, load_config, train
from genlab.core.config import RunConfig, build_config, preset_names
from genlab.core.errors import GenlabError
from genlab.core.registry import DATASETS, MODELS
from genlab.core.version import __version__
from genlab.tools import (
    latent_run as latent,  # latent.recon / interp / attribute / traverse / scatter
)
from genlab.tools.arch import arch
from genlab.tools.bench import run_bench as bench
from genlab.tools.compare import compare
from genlab.tools.coverage import sweep as coverage
from genlab.tools.denoise import denoise
from genlab.tools.doctor import report as doctor
from genlab.tools.edit_run import edit
from genlab.tools.labs import lab, list_labs
from genlab.tools.probe import probe
from genlab.tools.recommend import recommend
from genlab.tools.report import write_report as report
from genlab.tools.sample import sample
from genlab.tools.truncation import truncation


def list_models() -> list[str]:
    """The registered model names (``genlab list``)."""
    return MODELS.names()


def list_datasets() -> list[str]:
    """The registered dataset names (``genlab list``)."""
    return DATASETS.names()


# The public API (docs/api.md): one function per CLI command, under the command's name.
__all__ = [
    "DATASETS",
    "MODELS",
    "GenlabError",
    "RunConfig",
    "__version__",
    "arch",
    "bench",
    "build_config",
    "compare",
    "coverage",
    "data",
    "denoise",
    "doctor",
    "edit",
    "evaluate",
    "lab",
    "latent",
    "list_datasets",
    "list_labs",
    "list_models",
    "load",
    "load_config",
    "preset_names",
    "probe",
    "recommend",
    "report",
    "sample",
    "train",
    "truncation",
]
