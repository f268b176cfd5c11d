"""Run configuration: pydantic models, YAML presets and dotted ``key=value`` overrides.

A run is resolved in this order, each layer a delta over the one before:
field defaults -> the model's registered variant defaults -> preset -> explicit arguments
(model name, ``--data``) -> dotted overrides. The resolved config is written to
``RUN/config.json`` before the first step.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

from genlab.core.errors import ConfigError
from genlab.core.registry import MODELS


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    """Base of each model's config; ``name`` is the registered model (or variant) name."""

    name: str


class DataConfig(Section):
    name: str = Field("digits", description="registered dataset name (`genlab list`)")
    root: str | None = Field(
        None, description="directory of the files (mnist, cifar10, imagefolder, ...)"
    )
    image_size: int | None = Field(None, ge=4, le=256, description="resize to this square size")
    channels: Literal[1, 3] | None = Field(None, description="imagefolder: 1 = grey, 3 = RGB")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="held-out share")
    split_seed: int = Field(0, description="seed of the train/test permutation")
    num_samples: int = Field(100_000, ge=1, description="synthetic data: training points")
    sigma: float | None = Field(None, gt=0, description="mixtures: std of each mode")
    radius: float | None = Field(None, gt=0, description="ring8: radius of the circle of modes")
    cache_dir: str | None = Field(None, description="imagefolder: where decoded arrays are kept")
    crop: int | None = Field(
        None, ge=8, description="imagefolder: side of the centred square cut before resizing"
    )
    download: bool = Field(
        False, description="mnist, fashion_mnist, kmnist, cifar10: fetch missing files (checked)"
    )
    num_users: int | None = Field(None, ge=20, description="clicks: users; None = 6000")
    num_items: int | None = Field(None, ge=10, description="clicks: items; None = 1000")
    min_rating: float = Field(4.0, ge=0, description="movielens: ratings >= this count as clicks")
    heldout_users: int | float | None = Field(
        None, gt=0, description="validation and test users each: a count, or a share if < 1"
    )
    heldout_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of a held-out user's items hidden for evaluation"
    )


class TrainConfig(Section):
    steps: int = Field(2000, ge=1, description="optimizer steps (a GAN step = one G update)")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-4, gt=0, description="learning rate (generator / main network)")
    lr_d: float | None = Field(None, gt=0, description="discriminator lr; None = lr")
    lr_decay: Literal["none", "linear"] = Field(
        "none", description="lr schedule over train.steps: constant, or linear decay to 0"
    )
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas")
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0)
    ema: float = Field(0.0, ge=0, lt=1, description="EMA decay of generator/decoder; 0 = off")
    log_every: int = Field(50, ge=1, description="steps between metrics.jsonl lines")
    sample_every: int = Field(500, ge=1, description="steps between fixed-noise grids")
    ckpt_every: int = Field(500, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, description="newest checkpoints kept on disk")
    num_samples: int = Field(64, ge=1, le=1024, description="images in each sample grid")
    eval_every: int | None = Field(
        None, ge=1, description="steps between quality evaluations logged beside the losses"
    )
    eval_metrics: str | None = Field(
        None, description="metrics of eval_every, e.g. 'elbo,recon'; None = 'modes' on 2-D mixtures"
    )
    threads: int | None = Field(None, ge=1, description="CPU threads; None = torch default")
    progress: bool = Field(True, description="show a progress bar")
    # Speed (docs/performance.md).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="autocast dtype of the training step; auto = bf16 on a GPU with native "
        "bf16, else fp32; fp16 adds a gradient scaler",
    )
    channels_last: bool = Field(False, description="NHWC memory layout for image networks")
    compile: bool = Field(False, description="torch.compile each network (slow first steps)")
    # Data parallel training under torchrun (docs/distributed.md); batch_size is per process.
    lr_scale: Literal["none", "linear", "sqrt"] = Field(
        "none", description="lr x processes (linear) or x sqrt(processes) under torchrun"
    )
    sync_batchnorm: bool = Field(False, description="batch norm over all processes (CUDA)")
    dist_backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="torch.distributed backend; auto = nccl on CUDA, gloo on CPU"
    )


class RunConfig(Section):
    model: SerializeAsAny[ModelConfig]
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seed: int = Field(0, description="seed of weights, noise and batch order")
    device: str = Field("cpu", description="cpu, cuda, cuda:N or auto")

    @field_validator("model", mode="before")
    @classmethod
    def _typed_model(cls, value: Any) -> Any:
        # The model section is validated by the registered model's own config class.
        if isinstance(value, ModelConfig):
            value = value.model_dump()
        if not isinstance(value, dict) or "name" not in value:
            raise ValueError("the model section needs a 'name'")
        entry = MODELS.entry(value["name"])
        return entry.obj.Config.model_validate({**entry.defaults, **value})


# ----------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    """The names of the bundled presets (``presets/*.yaml``), sorted."""
    files = resources.files("genlab.presets").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = resources.files("genlab.presets") / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; choose from: {', '.join(preset_names())}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r} is not a mapping")
    return data


# ----------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=2e-4"`` -> (["train", "lr"], 2e-4). Values are read as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def set_dotted(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for k in keys[:-1]:
        child = node.setdefault(k, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(keys)}: {k!r} is a value, not a section")
        node = child
    node[keys[-1]] = value


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ----------------------------------------------------------------------------- resolve


def _valid_keys(loc: tuple[Any, ...], raw: dict[str, Any]) -> list[str]:
    """The field names allowed at the section ``loc`` points into."""
    section: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        if section is RunConfig and part == "model":
            name = (raw.get("model") or {}).get("name")
            section = MODELS.get(name).Config if name in MODELS else ModelConfig
            continue
        ann = section.model_fields[part].annotation
        section = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else section
    return sorted(section.model_fields)


def format_validation_error(err: ValidationError, raw: dict[str, Any]) -> str:
    """One line for the first problem: the dotted key, what is wrong, what is valid."""
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not str(p).startswith("function-"))
    key = ".".join(str(p) for p in loc) or "config"
    if first["type"] == "extra_forbidden":
        prefix = "".join(f"{p}." for p in loc[:-1])
        valid = ", ".join(prefix + k for k in _valid_keys(loc, raw))
        return f"unknown key {key!r}; valid keys here: {valid}"
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {first['msg']}{shown}"


def validate(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, raw)) from None


def build_config(
    model: str | None = None,
    *,
    data: str | None = None,
    preset: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve a run config. Without ``preset``, the preset named after the model is used when
    one exists (``genlab train dcgan`` picks ``presets/dcgan.yaml``); a preset's name in place
    of the model's runs that preset's model (``genlab train dcgan_cifar10``)."""
    raw: dict[str, Any] = copy.deepcopy(base or {})
    if preset is None and model is not None and model in preset_names():
        preset = model
        if model not in MODELS:  # a recipe named alone (`genlab train dcgan_cifar10`): its model
            model = (load_preset(preset).get("model") or {}).get("name") or model
    if preset is not None:
        delta = load_preset(preset)
        named = (delta.get("model") or {}).get("name")
        if model is not None and named is not None and named != model:
            raise ConfigError(f"preset {preset!r} is for model {named!r}, not {model!r}")
        raw = deep_merge(raw, delta)
    if model is not None:
        MODELS.entry(model)  # unknown name -> one line listing the valid ones
        set_dotted(raw, ["model", "name"], model)
    if data is not None:
        set_dotted(raw, ["data", "name"], data)
    if isinstance(overrides, dict):
        pairs = [(key.split("."), value) for key, value in overrides.items()]
    else:
        pairs = [parse_override(text) for text in overrides or ()]
    for keys, value in pairs:
        set_dotted(raw, keys, value)
    if "name" not in (raw.get("model") or {}):
        raise ConfigError(f"no model given; choose from: {', '.join(MODELS.names())}")
    return validate(raw)
