"""InceptionV3 as used by the Frechet Inception Distance (Heusel et al. 2017, arXiv:1706.08500;
architecture: Szegedy et al. 2016, "Rethinking the Inception Architecture", arXiv:1512.00567).

The FID numbers in the literature come from one TensorFlow graph (``inception-2015-12-05``), which
pytorch-fid ported to PyTorch (https://github.com/mseitzer/pytorch-fid, weights file
``pt_inception-2015-12-05-6726825d.pth``). That graph differs from torchvision's InceptionV3 in
three ways, all reproduced here:

- every 3x3 average pool inside the Inception blocks ignores the zero padding in its mean
  (TensorFlow's ``count_include_pad=False``);
- the last block (``Mixed_7c``) pools its branch with a 3x3 *max* pool, not an average pool;
- the classifier has 1008 outputs (1000 ImageNet classes and 8 unused ones).

Module names match torchvision's ``Inception3`` without its auxiliary head, so the published
state dict (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ...,
``fc.weight``) loads as is. Nothing is downloaded: the user passes the file.

Input: (B, 1 or 3, H, W) floats in [-1, 1] (grey is repeated to RGB), resized to 299x299 with
bilinear interpolation, the range the ported graph expects. Output of ``pool3``: (B, 2048), the
global average of the last block, the FID feature.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.core.errors import CheckpointError

INPUT_SIZE = 299
NUM_LOGITS = 1008
Kernel = int | tuple[int, int]


class BasicConv2d(nn.Module):
    """Conv (no bias), batch norm (eps 1e-3, TensorFlow's), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: Kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: Tensor) -> Tensor:
    # TensorFlow's average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def _max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, 3, 1, 1)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1 -> 224 + pool_features channels."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: stride-2 3x3 | 1x1-3x3-3x3/2 | max pool -> 480 + c_in."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1) -> 768 channels."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = dict(padding=(0, 3)), dict(padding=(3, 0))
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), **row)
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool -> 512 + c_in."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs -> 2048 channels. ``pool`` is the branch pool:
    average (Mixed_7b) or max (Mixed_7c, as in the FID graph)."""

    def __init__(self, c_in: int, pool: str = "avg") -> None:
        super().__init__()
        self.pool = {"avg": _avg_pool, "max": _max_pool}[pool]
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))], 1)


class FIDInceptionV3(nn.Module):
    """The FID network. ``pool3(x)`` -> (B, 2048) features; ``logits(x)`` -> (B, 1008)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)  # 299 -> 149
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)  # -> 147
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)  # after a 3x3/2 max pool: 73
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)  # -> 71, then max pool -> 35
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)  # -> 17
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)  # -> 8
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, NUM_LOGITS)

    @staticmethod
    def prepare(x: Tensor) -> Tensor:
        """(B, 1|3, H, W) in [-1, 1] -> (B, 3, 299, 299) in [-1, 1]."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"InceptionV3 takes 1 or 3 channels, got {x.shape[1]}")
        return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)

    def pool3(self, x: Tensor) -> Tensor:
        """(B, 1|3, H, W) in [-1, 1] -> (B, 2048) pool3 features (non-negative)."""
        x = self.prepare(x)
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
            x = getattr(self, name)(x)
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)
        for block in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{block}")(x)
        return x.mean(dim=(2, 3))

    def logits(self, x: Tensor) -> Tensor:
        """(B, 1|3, H, W) in [-1, 1] -> (B, 1008) ImageNet logits, ``fc(pool3(x))``."""
        return self.fc(self.pool3(x))

    def score_logits(self, x: Tensor) -> Tensor:
        """(B, 1|3, H, W) in [-1, 1] -> (B, 1008) the Inception Score's logits: ``pool3 @ W``,
        without the fc bias, as in the published score (Salimans et al. 2016, the
        openai/improved-gan code) and torch-fidelity's ``logits_unbiased``."""
        return self.pool3(x) @ self.fc.weight.T

    def forward(self, x: Tensor) -> Tensor:
        return self.pool3(x)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.pth``/``.pt`` file (``torch.load(weights_only=True)``: nothing is
    unpickled but tensors and plain containers) or a ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--inception-weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt, or holding objects we refuse to unpickle
        # torch's own message suggests weights_only=False, i.e. unpickling: not advice we pass on.
        raise CheckpointError(
            f"cannot read Inception weights {path}: not a safetensors file or a tensors-only "
            "PyTorch state dict (such as pt_inception-2015-12-05-6726825d.pth)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors (name -> tensor)")
    return state


def _first(keys: list[str], what: str) -> str:
    more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
    return f"{what} key {keys[0]!r}{more}"


def load_fid_inception(path: str | Path) -> FIDInceptionV3:
    """The FID InceptionV3 with the weights in ``path``, in eval mode. A missing or unexpected
    key, or a tensor of the wrong shape, is a one-line ``CheckpointError`` naming it."""
    state = read_state_dict(path)
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        net = FIDInceptionV3()
    own = net.state_dict()
    # Batch-norm step counters are unused at inference; files from old PyTorch lack them.
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        if missing or unexpected:
            detail = _first(missing, "missing") if missing else _first(unexpected, "unexpected")
        else:
            k = wrong[0]
            detail = f"{k!r} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
        raise CheckpointError(
            f"{path} is not the FID InceptionV3 (pt_inception-2015-12-05): {detail}"
        )
    for k in optional - set(state):
        state[k] = torch.tensor(0, dtype=torch.long)
    net.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True
    )
    return net.eval()
