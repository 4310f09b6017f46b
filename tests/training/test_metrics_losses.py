from __future__ import annotations

import numpy as np
import pytest
import torch

from lle.training.losses import (
    BlackLevelLoss,
    CharbonnierLoss,
    ColorAngleLoss,
    ColorCastLoss,
    CompositeLoss,
    ExposureLoss,
    GradientLoss,
    LocalContrastLoss,
    LossConfig,
    MSSSIMLoss,
)
from lle.training.metrics import psnr, psnr_gt_mean, ssim

skm = pytest.importorskip("skimage.metrics")


def _pair(seed: int = 0, hw: tuple[int, int] = (48, 40)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(1, 3, *hw, generator=g)
    x = (y + 0.1 * torch.randn(1, 3, *hw, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_and_ssim_match_scikit_image(seed: int) -> None:
    x, y = _pair(seed)
    xn, yn = x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy()
    ref_psnr = skm.peak_signal_noise_ratio(yn, xn, data_range=1.0)
    ref_ssim = skm.structural_similarity(
        yn, xn, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert float(psnr(x, y)) == pytest.approx(ref_psnr, abs=1e-3)
    assert float(ssim(x, y)) == pytest.approx(ref_ssim, abs=1e-3)


def test_gt_mean_psnr_removes_exposure_error() -> None:
    _, y = _pair()
    dark = y * 0.5
    assert float(psnr_gt_mean(dark, y)) > float(psnr(dark, y)) + 10


@pytest.mark.parametrize("term", [CharbonnierLoss(), MSSSIMLoss(), ColorAngleLoss(), ExposureLoss(), GradientLoss()])
def test_each_term_is_zero_at_match_and_positive_otherwise(term: torch.nn.Module) -> None:
    x, y = _pair(hw=(64, 64))
    assert float(term(y, y)) < 2e-3
    assert float(term(x * 0.7, y)) > float(term(y, y))


def test_exposure_penalises_over_more_than_under() -> None:
    _, y = _pair(hw=(64, 64))
    y = y * 0.5
    term = ExposureLoss(over_weight=3.0)
    assert float(term(y + 0.1, y)) > 2 * float(term(y - 0.1, y))


def test_color_angle_ignores_brightness_but_sees_casts() -> None:
    _, y = _pair(hw=(32, 32))
    y = y.clamp(0.1, 0.9)
    term = ColorAngleLoss()
    assert float(term(y * 0.5, y)) < 1e-5
    cast = y * torch.tensor([1.3, 1.0, 0.7]).view(1, 3, 1, 1)
    assert float(term(cast, y)) > 1e-3


def test_composite_weights_and_gradients() -> None:
    x, y = _pair(hw=(32, 32))
    x.requires_grad_(True)
    loss, parts = CompositeLoss(LossConfig(ssim=0.0))(x, y)
    assert "ssim" not in parts and set(parts) == {"pixel", "color", "exposure", "gradient"}
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    np.testing.assert_allclose(
        float(loss.detach()), sum(getattr(LossConfig(), k) * v for k, v in parts.items()), rtol=1e-5
    )


def _scene(seed: int = 0) -> torch.Tensor:
    """A dark, flat wall (top half) over a saturated red/green texture (bottom half), (1, 3, 32, 32)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.empty(1, 3, 32, 32)
    y[..., :16, :] = torch.tensor([0.12, 0.11, 0.10]).view(1, 3, 1, 1)
    tex = torch.rand(1, 1, 16, 32, generator=g)
    y[:, 0:1, 16:] = 0.3 + 0.5 * tex
    y[:, 1:2, 16:] = 0.5 - 0.3 * tex
    y[:, 2:3, 16:] = 0.1
    return y


def _slope(term: torch.nn.Module, make) -> float:
    """d loss / d t at t = 0.5 for the output ``make(t)``."""
    t = torch.tensor(0.5, requires_grad=True)
    term(make(t), _scene()).backward()
    return float(t.grad)


def test_lab_of_primaries_and_grey() -> None:
    from lle.training.losses import rgb_to_lab

    lab = rgb_to_lab(torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 2, 1))
    red, grey = lab[0, :, 0, 0], lab[0, :, 1, 0]
    assert red[0] == pytest.approx(53.24, abs=0.1) and red[1] == pytest.approx(80.09, abs=0.2)
    assert red[2] == pytest.approx(67.20, abs=0.2)
    assert grey[1].abs() < 1e-3 and grey[2].abs() < 1e-3


def test_chroma_and_saturation_terms_pull_towards_the_reference_colour() -> None:
    from lle.training.losses import ChromaLoss, SaturationLoss

    y = _scene()
    grey = y.mean(1, keepdim=True).expand_as(y)

    def washed(t: torch.Tensor) -> torch.Tensor:  # t = 1: the reference, t = 0: grey
        return grey + t * (y - grey)

    for term in (ChromaLoss(), SaturationLoss()):
        assert float(term(y, y)) == pytest.approx(0.0, abs=1e-6)
        assert _slope(term, washed) < 0  # more of the reference's colour lowers the loss
        assert float(term(washed(torch.tensor(0.3)), y)) > float(term(washed(torch.tensor(0.8)), y))
    over = grey + 1.6 * (y - grey)
    assert float(SaturationLoss()(over.clamp(0, 1), y)) > 0.05  # oversaturation costs too
    # Brightness alone barely moves the chroma term (that is the exposure term's job).
    assert float(ChromaLoss()(y * 0.9, y)) < 0.2 * float(ChromaLoss()(washed(torch.tensor(0.5)), y))


def test_flat_noise_term_costs_noise_on_dark_flat_areas_only() -> None:
    from lle.training.losses import FlatNoiseLoss

    y = _scene()
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.05
    wall = torch.zeros_like(y)
    wall[..., :16, :] = 1.0
    term = FlatNoiseLoss()
    assert float(term(y, y)) == pytest.approx(0.0, abs=1e-7)
    assert _slope(term, lambda t: y + t * noise * wall) > 0  # noise on the dark wall: the loss rises with it
    on_wall = float(term(y + noise * wall, y))
    on_texture = float(term(y + noise * (1 - wall), y))
    assert on_wall > 3 * on_texture  # the same noise on the texture costs much less


def test_new_terms_enter_the_composite_only_when_weighted() -> None:
    from lle.training.losses import CompositeLoss, LossConfig

    assert not {"chroma", "saturation", "flat_noise"} & set(CompositeLoss().terms)
    loss = CompositeLoss(LossConfig(chroma=0.1, saturation=0.05, flat_noise=0.1))
    x = _scene().clone().requires_grad_(True)
    total, parts = loss(x * 0.8, _scene())
    assert {"chroma", "saturation", "flat_noise"} <= set(parts)
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def _black_scene(hw: tuple[int, int] = (64, 64)) -> torch.Tensor:
    """A reference with true blacks (a black object on a mid-grey wall) and some texture."""
    g = torch.Generator().manual_seed(3)
    y = 0.45 + 0.05 * torch.rand(1, 3, *hw, generator=g)
    y[..., 8:24, 8:40] = 0.01
    return y


def test_black_level_costs_lifted_blacks_and_its_gradient_lowers_them() -> None:
    y = _black_scene()
    term = BlackLevelLoss()
    assert float(term(y, y)) < 1e-6
    lifted = (0.15 + 0.85 * y).requires_grad_(True)  # blacks lifted to grey, the wall barely moves
    loss = term(lifted, y)
    assert float(loss.detach()) > 0.1
    loss.backward()
    assert lifted.grad is not None
    # descending the gradient darkens the black object (grad > 0 there) and leaves the wall alone
    assert float(lifted.grad[..., 8:24, 8:40].sum()) > 0
    assert float(lifted.grad[..., 40:, :].abs().sum()) == 0.0
    # lifting costs more than crushing by the same amount
    assert float(term((y + 0.05).clamp(0, 1), y)) > 1.5 * float(term((y - 0.05).clamp(0, 1), y))


def test_local_contrast_costs_flat_output_and_its_gradient_restores_contrast() -> None:
    y = _black_scene()
    term = LocalContrastLoss()
    assert float(term(y, y)) < 1e-6
    flat = (0.3 + 0.4 * y).requires_grad_(True)  # milky: every tone pulled towards mid-grey
    loss = term(flat, y)
    assert float(loss.detach()) > 0.1
    loss.backward()
    assert flat.grad is not None
    # a small step against the gradient widens the black/wall step (the edge's dark side darkens)
    stepped = (flat - 0.005 * flat.grad / flat.grad.abs().max()).detach()
    assert float(term(stepped, y)) < float(loss.detach())
    edge_dark = stepped[..., 10:22, 10:38].mean() - flat.detach()[..., 10:22, 10:38].mean()
    assert float(edge_dark) < 0


def test_local_contrast_is_not_paid_back_by_grain() -> None:
    y = _black_scene()
    noisy = (y + 0.05 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    term = LocalContrastLoss()
    assert float(term(noisy, y)) > float(term(y, y))


def test_colour_cast_ignores_brightness_and_its_gradient_removes_the_cast() -> None:
    y = _black_scene()
    term = ColorCastLoss()
    assert float(term(y * 0.6, y)) < 1e-6
    cast = (y * torch.tensor([1.15, 0.85, 1.15]).view(1, 3, 1, 1)).clamp(0, 1).requires_grad_(True)  # magenta
    loss = term(cast, y)
    assert float(loss.detach()) > 0.02
    loss.backward()
    assert cast.grad is not None
    per_channel = cast.grad.sum((0, 2, 3))
    # red and blue are too strong (push down: grad > 0), green too weak (push up: grad < 0)
    assert float(per_channel[0]) > 0 and float(per_channel[2]) > 0 and float(per_channel[1]) < 0


@pytest.mark.parametrize("name", ["black_level", "contrast", "cast"])
def test_new_terms_join_the_composite_when_weighted(name: str) -> None:
    y = _black_scene(hw=(32, 32))
    x = (0.2 + 0.7 * y).requires_grad_(True)
    loss, parts = CompositeLoss(LossConfig(**{name: 1.0}))(x, y)
    assert name in parts and parts[name] > 0
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert name not in CompositeLoss(LossConfig())(x, y)[1]
