from __future__ import annotations

import numpy as np
import pytest

from lle.data.synth import DegradeParams, SynthConfig, degrade, linear_to_srgb, srgb_to_linear, synthesize
from lle.data.transforms import paired_augment, paired_crop, paired_flip_rot


def _flat(v: float, n: int = 64) -> np.ndarray:
    return np.full((n, n, 3), v, np.float32)


def test_srgb_round_trip() -> None:
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)


@pytest.mark.parametrize("ev", [1.5, 3.0, 5.0])
def test_mean_linear_brightness_drops_by_requested_ev(ev: float) -> None:
    img = np.random.default_rng(0).uniform(0.2, 0.9, (128, 128, 3)).astype(np.float32)
    p = DegradeParams(ev=ev, wb=(1.0, 1.0, 1.0), photons_at_white=1e6, read_noise=0.0)
    low = degrade(img, p, np.random.default_rng(1), quantize=False)
    measured = np.log2(srgb_to_linear(img).mean() / srgb_to_linear(low).mean())
    assert measured == pytest.approx(ev, abs=0.05)


def test_noise_variance_grows_with_signal() -> None:
    p = DegradeParams(ev=0.0, wb=(1.0, 1.0, 1.0), photons_at_white=200.0, read_noise=0.001)
    rng = np.random.default_rng(0)
    variances = []
    for v in (0.1, 0.4, 0.8):
        clean = _flat(v, 128)
        low = degrade(clean, p, rng, quantize=False)
        variances.append(float(srgb_to_linear(low).var()))
    assert variances[0] < variances[1] < variances[2]


def test_white_balance_shift_changes_channel_ratio() -> None:
    p = DegradeParams(ev=1.0, wb=(1.2, 1.0, 0.8), photons_at_white=1e6, read_noise=0.0)
    low = srgb_to_linear(degrade(_flat(0.5), p, np.random.default_rng(0), quantize=False))
    r, g, b = low.reshape(-1, 3).mean(0)
    assert r / g == pytest.approx(1.2, rel=0.02) and b / g == pytest.approx(0.8, rel=0.02)


def test_synthesize_is_seeded_and_quantised() -> None:
    img = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    a, pa = synthesize(img, SynthConfig(), np.random.default_rng(7))
    b, pb = synthesize(img, SynthConfig(), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert pa == pb
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-4)
    assert a.mean() < img.mean()


def test_paired_transforms_share_geometry() -> None:
    rng = np.random.default_rng(3)
    base = np.arange(40 * 50 * 3, dtype=np.float32).reshape(40, 50, 3)
    for _ in range(20):
        a, b = paired_crop(base, base * 2, 16, rng)
        np.testing.assert_array_equal(b, a * 2)
        a, b = paired_flip_rot(base, base + 1, rng)
        np.testing.assert_array_equal(b, a + 1)


def test_paired_augment_jitters_only_the_low_image() -> None:
    rng = np.random.default_rng(0)
    img = np.full((40, 40, 3), 0.25, np.float32)
    low, ref = paired_augment(img, img.copy(), 32, rng, exposure_jitter=1.0)
    assert low.shape == ref.shape == (32, 32, 3)
    np.testing.assert_array_equal(ref, 0.25)


def test_crop_pads_small_images_and_rejects_mismatched_pairs() -> None:
    rng = np.random.default_rng(0)
    a, b = paired_crop(_flat(0.1, 8), _flat(0.2, 8), 16, rng)
    assert a.shape == (16, 16, 3)
    with pytest.raises(ValueError, match="differ in size"):
        paired_crop(_flat(0.1, 8), _flat(0.1, 9), 4, rng)
