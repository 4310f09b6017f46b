from __future__ import annotations

import numpy as np
import pytest
import torch

from lle.training.losses import (
    CharbonnierLoss,
    ColorAngleLoss,
    CompositeLoss,
    ExposureLoss,
    GradientLoss,
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
