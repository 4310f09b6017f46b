"""The camera-model synthesis: each step on its own, then the whole chain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lle.data.unprocess import (
    UnprocessConfig,
    _inverse3,
    add_sensor_noise,
    apply_ccm,
    degrade_camera,
    inverse_smoothstep,
    process,
    random_ccm,
    sample_camera,
    smoothstep,
    unprocess,
)


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    r = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([0.5 + 0.4 * np.sin(xx / 7), 0.5 + 0.4 * np.cos(yy / 5), 0.3 + 0.2 * np.sin((xx + yy) / 9)], -1)
    return np.clip(base + r.normal(0, 0.01, base.shape), 0.02, 0.98).astype(np.float32)


def test_tone_curve_is_inverted_and_monotonic() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.allclose(inverse_smoothstep(smoothstep(x)), x, atol=1e-4)
    assert np.all(np.diff(smoothstep(x)) >= 0) and np.all(np.diff(inverse_smoothstep(x)) >= 0)


def test_colour_matrix_keeps_white_and_is_invertible() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = random_ccm(rng)
        assert np.allclose(m.sum(axis=1), 1.0, atol=1e-5)  # white stays white: WB is a separate step
        assert np.allclose(_inverse3(m) @ m, np.eye(3), atol=1e-4)
    img = _photo()
    assert np.allclose(apply_ccm(apply_ccm(img, m), _inverse3(m)), img, atol=1e-4)


def test_process_inverts_unprocess() -> None:
    img = _photo()
    rng = np.random.default_rng(1)
    m, gains = random_ccm(rng), (2.1, 1.0, 1.7)
    raw = unprocess(img, m, gains)
    assert raw.shape == img.shape and 0.0 <= raw.min() and raw.max() <= 1.0
    back = process(raw, gains, _inverse3(m), tone=True, gamma=None)
    ok = (apply_ccm(raw * np.asarray(gains, np.float32), _inverse3(m)) < 1.0).all(axis=-1)  # not clipped
    assert ok.mean() > 0.9 and np.abs(back - img)[ok].max() < 2e-3


def test_white_balance_is_inverted_by_its_gains() -> None:
    img = _photo()
    m = np.eye(3, dtype=np.float32)
    raw = unprocess(img, m, (2.0, 1.0, 1.5))
    assert raw[..., 0].mean() < raw[..., 1].mean() * 0.8  # inverse gains: a raw frame looks green
    assert np.allclose(process(raw, (2.0, 1.0, 1.5), m, tone=True), img, atol=2e-3)


def test_noise_variance_grows_with_the_signal_in_linear_light() -> None:
    rng = np.random.default_rng(0)
    shot, read = 2e-3, 1e-6
    levels = (0.02, 0.08, 0.32)
    var = [float((add_sensor_noise(np.full((96, 96, 3), v, np.float32), shot, read, rng) - v).var()) for v in levels]
    for v, got in zip(levels, var, strict=True):
        assert got == pytest.approx(shot * v + read, rel=0.15)  # heteroscedastic: var = shot * x + read
    assert var[0] < var[1] < var[2]


def test_row_noise_and_black_level_error() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 0.2, np.float32)
    banded = add_sensor_noise(flat, 1e-8, 1e-10, rng, row=0.01)
    assert banded.mean(axis=(1, 2)).std() > 0.005 and banded.std(axis=1).mean() < 1e-3  # rows differ, not columns
    offset = add_sensor_noise(flat, 1e-8, 1e-10, rng, black_error=0.003)
    assert offset.mean() == pytest.approx(0.203, abs=2e-4)


@pytest.mark.parametrize("jpeg", [0, 85])
def test_chain_darkens_keeps_geometry_and_is_seeded(jpeg: int) -> None:
    img = _photo()
    cfg = dataclasses.replace(UnprocessConfig(), jpeg_quality=(jpeg, jpeg), ev=(3.0, 3.0))
    p = sample_camera(cfg, np.random.default_rng(5))
    a = degrade_camera(img, p, np.random.default_rng(9))
    b = degrade_camera(img, p, np.random.default_rng(9))
    assert a.shape == img.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert a.mean() < 0.45 * img.mean()  # 3 stops darker (through the tone curve and gamma)
    # Geometry: the dark frame's structure lines up with the clean one (correlation of luma, no shift).
    la, li = a.mean(-1), img.mean(-1)
    c0 = np.corrcoef(la.ravel(), li.ravel())[0, 1]
    c1 = np.corrcoef(la[:, 1:].ravel(), li[:, :-1].ravel())[0, 1]
    assert c0 > 0.8 and c0 > c1


def test_sampled_parameters_stay_in_their_ranges() -> None:
    cfg = UnprocessConfig()
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = sample_camera(cfg, rng)
        assert cfg.ev[0] <= p.ev <= cfg.ev[1] and cfg.shot_noise[0] <= p.shot <= cfg.shot_noise[1]
        assert p.read > 0 and abs(p.black_error) <= cfg.black_level_error
        assert p.gamma is None or cfg.gamma[0] <= p.gamma <= cfg.gamma[1]
        assert p.jpeg_quality == 0 or cfg.jpeg_quality[0] <= p.jpeg_quality <= cfg.jpeg_quality[1]
