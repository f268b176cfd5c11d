"""The autoencoders' math against independent references: corruption statistics (binomial and
Gaussian tolerances), running code moments (numpy), the linear AE's optimum (PCA), and the
upsampling layers (sizes; the checkerboard of a transposed convolution)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from genlab.core.config import build_config
from genlab.core.errors import ConfigError
from genlab.data import load_data
from genlab.models import build_model
from genlab.models.autoencoder import (
    CORRUPTIONS,
    bernoulli_error,
    corruption_problem,
    gaussian_corruption,
    gaussian_factor,
    mask_corruption,
    salt_pepper_corruption,
    squared_error,
    update_moments,
)
from genlab.nn.conv import UPSAMPLERS, ConvDecoder
from genlab.nn.layers import LayerFactory


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(value=None, shape=(64, 1, 32, 32)):
    """A batch in [-1, 1]: constant ``value`` or uniform."""
    if value is not None:
        return torch.full(shape, float(value))
    return torch.rand(shape, generator=gen(9)) * 2 - 1


def tiny_model(name="ae", **overrides):
    cfg = build_config(name, preset=f"tiny_{name}", overrides=overrides)
    data = load_data(cfg.data)
    torch.manual_seed(0)
    return build_model(cfg.model, data.spec), data


# ----------------------------------------------------------------------------- corruption


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_noise_level_zero_is_the_identity(kind):
    x = images()
    assert torch.equal(CORRUPTIONS[kind](x, 0.0, gen()), x)


@pytest.mark.parametrize(("kind", "level"), [("gaussian", 2.0), ("mask", 0.7), ("salt_pepper", 1)])
def test_corrupted_values_stay_in_range_and_follow_the_generator(kind, level):
    x = images()
    a, b = CORRUPTIONS[kind](x, level, gen(1)), CORRUPTIONS[kind](x, level, gen(1))
    assert a.min() >= -1 and a.max() <= 1 and a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, CORRUPTIONS[kind](x, level, gen(2)))


def test_gaussian_noise_has_the_requested_std():
    x = images(0.0)  # 65,536 values; the std's standard error is 0.1 / sqrt(2N) = 0.0003
    noise = gaussian_corruption(x, 0.1, gen()) - x
    assert abs(noise.mean().item()) < 4 * 0.1 / 256
    assert noise.std().item() == pytest.approx(0.1, abs=0.0015)


def test_mask_hits_the_requested_fraction_of_pixels_across_channels():
    x = images(1.0, (64, 3, 32, 32))  # all ink, so a masked pixel is one at -1
    out = mask_corruption(x, 0.3, gen())
    hit = out == -1
    assert torch.equal(hit[:, :1].expand_as(hit), hit)  # all channels of a pixel together
    assert torch.equal(out[~hit], x[~hit])  # the rest untouched
    n = 64 * 32 * 32
    sd = (0.3 * 0.7 / n) ** 0.5
    assert abs(hit[:, 0].float().mean().item() - 0.3) < 4 * sd


def test_salt_and_pepper_hits_the_fraction_with_equal_odds():
    x = images(0.0)
    out = salt_pepper_corruption(x, 0.2, gen())
    changed = out != 0
    n = x.numel()
    assert abs(changed.float().mean().item() - 0.2) < 4 * (0.2 * 0.8 / n) ** 0.5
    k = int(changed.sum())
    assert set(out[changed].unique().tolist()) == {-1.0, 1.0}
    assert abs((out == 1).sum().item() / k - 0.5) < 4 * (0.25 / k) ** 0.5


def test_corruption_levels_are_checked():
    assert corruption_problem("gaussian", 1.5) is None
    assert "[0, 1]" in corruption_problem("mask", 1.5)
    assert ">= 0" in corruption_problem("salt_pepper", -0.1)
    assert "finite" in corruption_problem("gaussian", float("nan"))


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model.corruption": "gaussian"}, "changes nothing"),
        ({"model.corruption": "mask", "model.noise_level": 1.5}, "fraction of pixels"),
        ({"model.upsample": "bilinear"}, "model.upsample"),
    ],
)
def test_bad_model_configs_are_one_line_errors(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        build_config("ae", preset="tiny_ae", overrides=overrides)
    assert "\n" not in str(err.value)


def test_dae_is_the_ae_with_corruption_on():
    dae, _ = tiny_model("dae")
    ae, _ = tiny_model("ae")
    assert type(dae) is type(ae)
    assert (dae.cfg.corruption, dae.cfg.noise_level) == ("mask", 0.25)
    x = images(1.0, (4, 1, 16, 16))
    assert torch.equal(ae.corrupt(x, gen()), x) and not torch.equal(dae.corrupt(x, gen()), x)


def test_dae_encodes_the_corrupted_image_and_scores_against_the_clean_one():
    model, _ = tiny_model("dae")
    x = images(None, (8, 1, 16, 16))
    torch.manual_seed(3)
    expected_input = model.corrupt(x)  # train_step's first random draw is the corruption
    before = copy.deepcopy(model)
    seen = []
    model.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    opts = model.configure_optimizers(build_config("dae", preset="tiny_dae").train)
    torch.manual_seed(3)
    out = model.train_step({"x": x}, opts, 0)
    assert torch.equal(seen[0], expected_input)
    reference = ((before.decoder(before.encoder(expected_input)) - x) ** 2).sum((1, 2, 3)).mean()
    assert out["loss"].item() == pytest.approx(reference.item(), rel=1e-5)


# ----------------------------------------------------------------------------- losses


def test_reconstruction_losses_match_numpy():
    rng = np.random.default_rng(0)
    out, x = rng.normal(size=(3, 1, 4, 4)), rng.uniform(-1, 1, size=(3, 1, 4, 4))
    t = (x + 1) / 2
    p = 1 / (1 + np.exp(-out))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).reshape(3, -1).sum(1)
    mse = ((out - x) ** 2).reshape(3, -1).sum(1)
    got_mse = squared_error(torch.tensor(out), torch.tensor(x)).numpy()
    got_bce = bernoulli_error(torch.tensor(out), torch.tensor(x)).numpy()
    np.testing.assert_allclose(got_mse, mse, rtol=1e-10)
    np.testing.assert_allclose(got_bce, bce, rtol=1e-8)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_autoencoder_reaches_the_pca_optimum(bias):
    """A linear AE with k codes can do no better than the best rank-k projection (Baldi &
    Hornik 1989), and its loss landscape has no other local minima: the optimum is the sum of
    the trailing eigenvalues of the data's second-moment matrix about its mean (with biases) or
    about zero (without), per image, in [-1, 1] units squared. L-BFGS finds it in well under a
    second, where Adam would need thousands of steps."""
    overrides = {"model.arch": "mlp", "model.hidden": [], "model.norm": "none"}
    cfg = build_config("ae", preset="tiny_ae", overrides=overrides | {"model.bias": bias})
    data = load_data(cfg.data.model_copy(update={"image_size": 8}))
    torch.manual_seed(1)
    model = build_model(cfg.model, data.spec).double()
    x = data.train.x.double() / 127.5 - 1  # (N, 1, 8, 8)
    flat = x.flatten(1).numpy()
    centre = flat.mean(0) if bias else 0.0
    eig = np.linalg.eigvalsh((flat - centre).T @ (flat - centre) / len(flat))  # ascending
    optimum = eig[: -cfg.model.latent_dim].sum()
    opt = torch.optim.LBFGS(
        model.parameters(), max_iter=200, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = model.recon.loss(model.decoder(model.encode(x)), x).mean()
        loss.backward()
        return loss

    opt.step(closure)
    loss = closure().item()
    assert optimum * (1 - 1e-9) < loss < optimum * 1.01


# ----------------------------------------------------------------------------- code statistics


def test_running_moments_of_equal_batches_are_the_pooled_moments():
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(40, 3)) @ rng.normal(size=(3, 3)) + 2 for _ in range(3)]
    mean, cov = torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    for t, b in enumerate(batches, start=1):
        mean, cov = update_moments(mean, cov, torch.tensor(b), 1.0 / t)
    pooled = np.concatenate(batches)
    np.testing.assert_allclose(mean.numpy(), pooled.mean(0), rtol=1e-10)
    np.testing.assert_allclose(cov.numpy(), np.cov(pooled.T, bias=True), rtol=1e-10)


def test_running_moments_with_momentum_weigh_batches_geometrically():
    rng = np.random.default_rng(2)
    batches = [rng.normal(loc=i, size=(30, 2)) for i in range(4)]
    mean, cov = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    for t, b in enumerate(batches, start=1):
        mean, cov = update_moments(mean, cov, torch.tensor(b), max(0.5, 1.0 / t))
    # weights 1, 1/2, 1/2, 1/2 -> batch shares 1/8, 1/8, 1/4, 1/2
    w = np.repeat([1 / 8, 1 / 8, 1 / 4, 1 / 2], 30)
    pooled = np.concatenate(batches)
    np.testing.assert_allclose(mean.numpy(), np.average(pooled, axis=0, weights=w), rtol=1e-10)
    ref = np.cov(pooled.T, aweights=w, bias=True)
    np.testing.assert_allclose(cov.numpy(), ref, rtol=1e-10)


def test_training_tracks_the_moments_of_the_encoder_codes():
    model, data = tiny_model("ae", **{"model.code_momentum": 0.001})
    codes = []
    model.encoder.register_forward_hook(lambda m, args, out: codes.append(out.detach()))
    opts = model.configure_optimizers(build_config("ae", preset="tiny_ae").train)
    x = data.train.x.float() / 127.5 - 1
    for step in range(3):
        model.train_step({"x": x[16 * step : 16 * step + 16]}, opts, step)
    pooled = torch.cat(codes).double().numpy()
    assert int(model.code_updates) == 3 and "code_cov" in model.state_dict()
    np.testing.assert_allclose(model.code_mean.numpy(), pooled.mean(0), rtol=1e-4, atol=1e-6)
    ref = np.cov(pooled.T, bias=True)
    np.testing.assert_allclose(model.code_cov.numpy(), ref, rtol=1e-3, atol=1e-6)


def test_cholesky_factor_and_sampler_follow_the_fitted_gaussian():
    a = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.8, 0.6, 0.0, 0.0], [0.2, -0.3, 0.5, 0.0]]).T
    cov, mean = a @ a.T, torch.tensor([1.0, -2.0, 0.5, 3.0])  # rank 3: one direction unused
    factor = gaussian_factor(cov).double()
    np.testing.assert_allclose((factor @ factor.T).numpy(), cov.double().numpy(), atol=1e-4)
    model, _ = tiny_model("ae")
    model.code_mean.copy_(mean)
    model.code_cov.copy_(cov)
    model.decode = lambda z, labels=None: z  # look at the codes the sampler draws
    z = model.sample(20_000, generator=gen()).double()
    assert torch.allclose(z.mean(0), mean.double(), atol=4 * 1.2 / 20_000**0.5)
    assert torch.allclose(torch.cov(z.T), cov.double(), atol=0.05)


# ----------------------------------------------------------------------------- upsampling


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
def test_decoder_reaches_every_size_with_either_upsampling(size, upsample):
    dec = ConvDecoder(5, 3, size, 4, LayerFactory(), upsample)
    assert dec(torch.randn(2, 5)).shape == (2, 3, size, size)
    n_resize = sum(isinstance(m, nn.Upsample) for m in dec.modules())
    n_strided = sum(isinstance(m, nn.ConvTranspose2d) for m in dec.modules()) - 1
    stages = {8: 1, 16: 2, 28: 2, 32: 3, 64: 4}[size]  # doublings after the base projection
    assert (n_resize, n_strided) == {"nearest": (stages, 0), "transposed": (0, stages)}[upsample]


@pytest.mark.parametrize("size", [7, 36])
def test_unreachable_size_is_the_same_error_for_nearest(size):
    with pytest.raises(ConfigError, match=f"image size {size}"):
        ConvDecoder(5, 1, size, 4, LayerFactory(), "nearest")


def test_transposed_doubling_paints_a_checkerboard_and_resize_conv_does_not():
    """Odena et al. 2016: on a constant input the interior of a k=4, s=2 transposed conv's
    output alternates between the sums of 4 sub-kernels; nearest resize + conv stays flat."""
    torch.manual_seed(0)
    flat = torch.ones(1, 1, 8, 8)
    for name, expect_flat in (("transposed", False), ("nearest", True)):
        layers = nn.Sequential(*UPSAMPLERS[name](LayerFactory(norm="none"), 1, 1, False))
        with torch.no_grad():
            inner = layers(flat)[0, 0, 2:-2, 2:-2]  # away from the zero padding
        phases = {round(inner[i::2, j::2].mean().item(), 6) for i in (0, 1) for j in (0, 1)}
        assert inner.shape == (12, 12)
        assert (len(phases) == 1) == expect_flat
        assert torch.allclose(inner[::2, ::2], inner[0, 0]) and torch.allclose(
            inner[1::2, 1::2], inner[1, 1]
        )
