"""The layers of a model as the resolved config builds them, with each layer's measured output
shape and parameters (``genlab arch``).

How the networks are run without knowing the model: the model is built fresh for this report
(nothing is loaded or saved), forward hooks are put on every layer, and ONE ``train_step`` runs
on a dummy batch of 2 (random pixels in [-1, 1] or points, plus labels and attributes when the
data has them). A train step is the one call every model has that runs all of its networks
(encoder, decoder, generator, discriminator, ...), whatever the objective; that it updates the
throw-away weights does not matter. Each layer reports the first call it sees. Parameters are
counted before the step. For every convolution and transposed convolution the spatial size the
formulas of ``genlab.nn.conv`` predict from the layer's measured input is printed beside the
measured one; a disagreement is flagged (``ArchReport.mismatches``; exit status 1 in the CLI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from genlab.core.config import RunConfig, build_config
from genlab.core.registry import DATASETS
from genlab.data import load_data
from genlab.data.base import DataSpec
from genlab.models import build_model
from genlab.nn.conv import conv_out, conv_t_out

DUMMY_BATCH = 2


@dataclass
class Layer:
    name: str  # qualified name inside the model, e.g. "encoder.0.net.3"
    kind: str  # class name and its size arguments
    params: int
    output: list[int] | None = None  # measured shape without the batch dimension
    predicted: list[int] | None = None  # conv / transposed conv: (H, W) from the formulas
    agrees: bool | None = None


@dataclass
class Block:
    name: str  # a top-level submodule ("encoder", "generator", ...) or "(own parameters)"
    params: int
    layers: list[Layer] = field(default_factory=list)


def _is_layer(qual: str, m: nn.Module) -> bool:
    # A layer has no children. Spectral norm adds a "parametrizations" child holding the weight's
    # parametrization: part of its layer, not a layer itself. Identity layers are left out.
    if not qual or ".parametrizations." in qual or isinstance(m, nn.Identity):
        return False
    return all(name == "parametrizations" for name, _ in m.named_children())


def _describe(m: nn.Module) -> str:
    # A parametrized layer's class is "Parametrized<Class>"; show the class, "sn" for the norm.
    kind = type(m).__name__.removeprefix("Parametrized")
    extra = ", sn" if hasattr(m, "parametrizations") else ""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        return f"{kind}({m.in_channels}->{m.out_channels}, k{k} s{s} p{p}{extra})"
    if isinstance(m, nn.Linear):
        return f"{kind}({m.in_features}->{m.out_features}{extra})"
    return kind


def _predict(m: nn.Module, size: tuple[int, int]) -> list[int] | None:
    """(H, W) out of a conv / transposed conv for an input of spatial ``size``."""
    if not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        return None
    rule = conv_out if isinstance(m, nn.Conv2d) else conv_t_out
    if m.dilation != (1, 1) or (isinstance(m, nn.ConvTranspose2d) and m.output_padding != (0, 0)):
        return None  # the formulas here are for dilation 1 and no output padding
    return [rule(n, m.kernel_size[i], m.stride[i], m.padding[i]) for i, n in enumerate(size)]


def dummy_batch(spec: DataSpec, n: int = DUMMY_BATCH) -> dict[str, torch.Tensor]:
    """A batch shaped like the data of ``spec``: x in [-1, 1], y and attrs when it has them."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, *spec.shape, generator=gen) * 2 - 1
    batch = {"x": x if spec.kind == "image" else x * 2}
    if spec.kind == "sequences":  # token ids
        batch["x"] = torch.randint(len(spec.extra["vocab"]), (n, *spec.shape), generator=gen)
    if spec.num_classes:
        batch["y"] = torch.randint(spec.num_classes, (n,), generator=gen)
    if spec.attr_names:
        batch["attrs"] = torch.randint(2, (n, len(spec.attr_names)), generator=gen).float()
    return batch


def measure_layers(model: nn.Module, train_cfg, spec: DataSpec) -> list[Block]:
    """The blocks and layers of ``model`` with shapes measured during one train step."""
    blocks: dict[str, Block] = {}
    layers: dict[nn.Module, Layer] = {}
    for qual, m in model.named_modules():
        if _is_layer(qual, m):
            top = qual.split(".")[0]
            own = sum(p.numel() for p in m.parameters())
            block = blocks.setdefault(top, Block(top, 0))
            layers[m] = Layer(qual, _describe(m), own)
            block.layers.append(layers[m])
    for top, sub in model.named_children():
        blocks.setdefault(top, Block(top, 0)).params = sum(p.numel() for p in sub.parameters())
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        blocks["(own parameters)"] = Block("(own parameters)", own)

    def hook(m: nn.Module, inputs, output) -> None:
        layer = layers[m]
        if layer.output is not None or not isinstance(output, torch.Tensor):
            return
        layer.output = list(output.shape[1:])
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if first is not None and first.dim() == 4:
            layer.predicted = _predict(m, tuple(first.shape[2:]))
            if layer.predicted is not None:
                layer.agrees = layer.predicted == list(output.shape[2:])

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        optimizers = model.configure_optimizers(train_cfg)
        model.train_step(dummy_batch(spec, DUMMY_BATCH * model.batches_for_step(0)), optimizers, 0)
    finally:
        for h in handles:
            h.remove()
    return list(blocks.values())


def _spec(cfg: RunConfig) -> DataSpec:
    """The dataset's spec; a dataset that synthesises ``num_samples`` is asked for a handful."""
    data = cfg.data
    if "num_samples" in DATASETS.get(data.name).uses:
        data = data.model_copy(update={"num_samples": 64})
    return load_data(data).spec


@dataclass
class ArchReport:
    """What ``arch`` measured: the resolved config, the data spec, the blocks and their layers,
    and the total parameter count (shared weights counted once)."""

    cfg: RunConfig
    spec: DataSpec
    blocks: list[Block]
    total: int

    def mismatches(self) -> list[str]:
        """Names of the layers whose measured size disagrees with the conv formulas."""
        return [x.name for b in self.blocks for x in b.layers if x.agrees is False]

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of ``genlab arch --json``."""
        return {
            "model": self.cfg.model.name,
            "data": self.cfg.data.name,
            "input_shape": list(self.spec.shape),
            "batch": DUMMY_BATCH,
            "blocks": [asdict(b) for b in self.blocks],
            "total_params": self.total,
        }

    def text(self) -> str:
        """A fixed-width table: one line per block, then one per layer, then the total."""
        return _text(self.cfg, self.spec, self.blocks, self.total)


def arch(
    model: str,
    *,
    data: str | None = None,
    preset: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> ArchReport:
    """Build the registered ``model`` from its resolved config (``data``, ``preset`` and dotted
    ``overrides`` as in ``genlab.train``), run one train step on a dummy batch and report each
    layer's measured output shape, parameters and size check (see the module docstring)."""
    cfg = build_config(model, data=data, preset=preset, overrides=overrides)
    spec = _spec(cfg)
    torch.manual_seed(cfg.seed)
    net = build_model(cfg.model, spec)
    total = sum(p.numel() for p in net.parameters())  # shared weights counted once
    return ArchReport(cfg, spec, measure_layers(net, cfg.train, spec), total)


def _text(cfg: RunConfig, spec: DataSpec, blocks: list[Block], total: int) -> str:
    shape = "x".join(map(str, spec.shape))
    lines = [f"{cfg.model.name} on {cfg.data.name} ({spec.kind} {shape}), batch {DUMMY_BATCH}"]
    row = "  {:<28} {:<34} {:>12} {:>10}  {}"
    lines.append(row.format("layer", "type", "output", "params", "size check"))
    for block in blocks:
        lines.append(f"{block.name}: {block.params:,} parameters")
        for layer in block.layers:
            out = "x".join(map(str, layer.output)) if layer.output else "(not run)"
            check = ""
            if layer.predicted is not None:
                mark = "ok" if layer.agrees else "MISMATCH"
                check = f"formula {'x'.join(map(str, layer.predicted))} {mark}"
            lines.append(row.format(layer.name, layer.kind, out, f"{layer.params:,}", check))
    lines.append(f"total: {total:,} parameters")
    return "\n".join(line.rstrip() for line in lines)
