"""The FID InceptionV3: published parameter count and key names, the TensorFlow-style pooling,
loading a state dict file, and the one-line errors of a file that does not match."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from genlab.core.errors import CheckpointError
from genlab.metrics.features import inception_space
from genlab.nn.inception import FIDInceptionV3, _avg_pool, load_fid_inception

# torchvision's InceptionV3 (ImageNet weights, 1000 classes, with its auxiliary classifier) has
# 27,161,264 parameters (torchvision Inception_V3_Weights.IMAGENET1K_V1 meta "num_params").
TORCHVISION_PARAMS = 27_161_264
# Its auxiliary head, absent from the FID network: conv0 1x1 768->128 and conv1 5x5 128->768
# (no bias, batch norm weight + bias each), fc 768->1000.
AUX = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
# The FID graph's classifier has 1008 outputs instead of 1000.
FC_EXTRA = 8 * 2048 + 8


@pytest.fixture(scope="module")
def net() -> FIDInceptionV3:
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


@pytest.fixture(scope="module")
def weights_file(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_parameter_count_matches_the_published_architecture(net):
    assert sum(p.numel() for p in net.parameters()) == TORCHVISION_PARAMS - AUX + FC_EXTRA


def test_state_dict_keys_are_those_of_the_published_file(net):
    state = net.state_dict()
    # 94 conv+bn units x 6 tensors (weight, bn weight/bias/mean/var/count) + fc weight and bias.
    assert len(state) == 94 * 6 + 2
    assert state["fc.weight"].shape == (1008, 2048)
    for key in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_4a_3x3.bn.running_var",
        "Mixed_5b.branch5x5_2.conv.weight",
        "Mixed_6a.branch3x3dbl_3.bn.weight",
        "Mixed_6e.branch7x7dbl_5.conv.weight",
        "Mixed_7a.branch7x7x3_4.bn.num_batches_tracked",
        "Mixed_7c.branch3x3dbl_3b.bn.running_mean",
    ):
        assert key in state, key
    assert not any(k.startswith("AuxLogits") for k in state)
    assert state["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)


def test_average_pool_ignores_padding():
    # TensorFlow divides by the real pixels only: a constant map stays constant at the border
    # (counting the zero padding would give 4/9 in the corners).
    x = torch.full((1, 1, 5, 5), 3.0)
    torch.testing.assert_close(_avg_pool(x), x)


def test_mixed_7c_pools_with_max(net):
    x = torch.randn(1, 2048, 8, 8)
    block = net.Mixed_7c
    out = block(x)[:, -192:]  # the pool branch comes last
    want = block.branch_pool(torch.nn.functional.max_pool2d(x, 3, 1, 1))
    torch.testing.assert_close(out, want)
    other = block.branch_pool(torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    assert not torch.allclose(out, other)


def test_loaded_weights_give_the_same_features(net, weights_file):
    loaded = load_fid_inception(weights_file)
    assert not loaded.training
    grey = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        feats = loaded.pool3(grey)
        assert feats.shape == (2, 2048) and (feats >= 0).all()
        # The same weights, and grey images read as RGB with three equal channels.
        torch.testing.assert_close(feats, net.pool3(grey.expand(-1, 3, -1, -1)))
        torch.testing.assert_close(loaded.logits(grey[:1]), net.fc(feats[:1]))


def test_the_score_logits_leave_out_the_fc_bias(net, weights_file):
    # The published Inception Score (openai/improved-gan) takes softmax(pool3 @ W), no bias.
    space = inception_space(weights_file, torch.device("cpu"), batch_size=2)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        pool = net.pool3(x).double()
        direct = pool @ net.fc.weight.double().T  # (2, 1008), computed here, not by the net
        got = space.logits(x).double()
        with_bias = net.logits(x).double()
    torch.testing.assert_close(got, direct, rtol=1e-4, atol=1e-5)
    assert net.fc.bias.abs().max() > 0 and not torch.allclose(with_bias, direct)


def test_safetensors_and_files_without_batch_counts_load(net, tmp_path):
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    loaded = load_fid_inception(path)
    torch.testing.assert_close(loaded.fc.weight, net.fc.weight)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda s: s.pop("Mixed_6c.branch1x1.conv.weight"), "missing key 'Mixed_6c.branch1x1"),
        (lambda s: s.update({"AuxLogits.fc.bias": torch.zeros(1008)}), "unexpected key 'Aux"),
        (lambda s: s.update({"fc.weight": torch.zeros(1000, 2048)}), "'fc.weight' has shape"),
    ],
)
def test_a_file_that_does_not_match_fails_in_one_line(net, tmp_path, edit, fragment):
    # Every tensor a broadcast view of one number: the right shapes in a file of a few KB.
    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in net.state_dict().items()}
    edit(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="not the FID InceptionV3") as err:
        load_fid_inception(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unreadable_files_fail_in_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_fid_inception(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read Inception weights") as err:
        load_fid_inception(junk)
    assert "\n" not in str(err.value) and "weights_only" not in str(err.value)
    pickled = tmp_path / "object.pth"
    torch.save({"net": torch.nn.Linear(2, 2)}, pickled)  # a module: refused by weights_only
    with pytest.raises(CheckpointError, match="cannot read Inception weights"):
        load_fid_inception(pickled)
