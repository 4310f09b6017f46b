"""Picture-fault metrics: each one moves the right way on a controlled change and stays put otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from lle.eval_metrics import (
    ab_error,
    chroma_ratio,
    clipped_share,
    flat_dark_mask,
    flat_dark_noise,
    inverted_share,
    picture_metrics,
)


def _scene() -> np.ndarray:
    """A dark flat wall on the left, a colourful ramp on the right, a lamp in the middle; (64, 96, 3)."""
    img = np.zeros((64, 96, 3), np.float32)
    img[:, :48] = (0.12, 0.10, 0.09)
    xx = np.linspace(0, 1, 48, dtype=np.float32)
    img[:, 48:, 0] = 0.3 + 0.6 * xx
    img[:, 48:, 1] = 0.6 - 0.4 * xx
    img[:, 48:, 2] = 0.2
    img[28:36, 44:52] = 0.9
    return img


def test_chroma_ratio_and_ab_error_see_washed_out_colour() -> None:
    ref = _scene()
    grey = ref.mean(-1, keepdims=True)
    washed = grey + 0.5 * (ref - grey)
    assert chroma_ratio(ref, ref) == pytest.approx(1.0)
    assert 0.3 < chroma_ratio(washed, ref) < 0.7
    assert ab_error(ref, ref) == pytest.approx(0.0, abs=1e-4) and ab_error(washed, ref) > 5
    # A hue shift keeps the ratio near 1 but not the a*b* error.
    shifted = ref[..., [1, 0, 2]]
    assert ab_error(shifted, ref) > ab_error(washed, ref)


def test_noise_is_measured_on_the_flat_dark_wall() -> None:
    ref = _scene()
    mask = flat_dark_mask(ref)
    assert mask[:, 5:40].mean() > 0.9 and mask[:, 60:].mean() < 0.1  # the wall, not the lamp or the ramp
    r = np.random.default_rng(0)
    levels = [flat_dark_noise(np.clip(ref + r.normal(0, s, ref.shape), 0, 1).astype(np.float32), mask)
              for s in (0.0, 0.01, 0.03)]  # fmt: skip
    assert levels[0] < 0.05 < levels[1] < levels[2]
    assert np.isnan(flat_dark_noise(ref, np.zeros_like(mask)))


def test_clipped_and_inverted_highlights() -> None:
    x = _scene()
    assert clipped_share(x, x) == 0.0 and inverted_share(x, x) == 0.0
    blown = np.clip(x * 1.5, 0, 1)
    assert clipped_share(blown, x) > 0.01
    dotted = x.copy()
    dotted[28:36, 44:52] = 0.2  # the lamp turned into a dark dot
    assert int(((x @ np.array([0.299, 0.587, 0.114], np.float32)) > 0.6).sum()) == 64  # only the lamp is bright
    assert inverted_share(dotted, x) == pytest.approx(1.0)


def test_picture_metrics_keys() -> None:
    x = _scene() * 0.3
    unpaired = picture_metrics(x * 2, x)
    assert set(unpaired) == {"noise", "clipped", "inverted", "mean_luma", "black", "contrast"}
    paired = picture_metrics(x * 2, x, _scene())
    assert {"chroma_ratio", "ab_error", "ref_noise", "ref_black", "contrast_ratio"} <= set(paired)


def test_black_level_sees_lifted_blacks_not_grain() -> None:
    from lle.eval_metrics import black_level

    img = np.full((64, 64, 3), 0.5, np.float32)
    img[:16, :16] = 0.02  # a black object
    lifted = 0.15 + 0.85 * img
    assert black_level(img) < 8 and black_level(lifted) > 35
    grain = np.clip(img + np.random.default_rng(0).normal(0, 0.02, img.shape), 0, 1).astype(np.float32)
    assert abs(black_level(grain) - black_level(img)) < 4  # the blur keeps single noisy pixels out of it


def test_local_contrast_ratio_sees_flat_output() -> None:
    from lle.eval_metrics import picture_metrics

    r = np.random.default_rng(1)
    ref = r.uniform(0.1, 0.9, (8, 8, 1)).repeat(8, 0).repeat(8, 1).repeat(3, 2).astype(np.float32)
    flat = 0.3 + 0.4 * ref
    m = picture_metrics(flat, ref * 0.2, ref)
    assert m["contrast_ratio"] == pytest.approx(0.4, abs=0.02)
    assert picture_metrics(ref, ref * 0.2, ref)["contrast_ratio"] == pytest.approx(1.0)
    assert m["black"] > m["ref_black"]
