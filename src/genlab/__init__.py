"""genlab: train, sample, evaluate and explore classic deep generative models.

import genlab
run = genlab.train("vae", data="digits", overrides={"train.steps": 500})
model = genlab.load(run)
images = model.sample(16, generator=torch.Generator().manual_seed(0))  # (16, 1, H, W)
"""

from genlab import data, models  # noqa: F401  (registers datasets and models)
from genlab.api import load, load_config, train
from genlab.core.config import RunConfig, build_config, preset_names
from genlab.core.errors import GenlabError
from genlab.core.registry import DATASETS, MODELS
from genlab.core.version import __version__


def list_models() -> list[str]:
    return MODELS.names()


def list_datasets() -> list[str]:
    return DATASETS.names()


__all__ = [
    "DATASETS",
    "MODELS",
    "GenlabError",
    "RunConfig",
    "__version__",
    "build_config",
    "list_datasets",
    "list_models",
    "load",
    "load_config",
    "preset_names",
    "train",
]
