from __future__ import annotations

import functools

import numpy as np
import pytest

from lle.pipeline import Enhancer, pad_to_multiple, tile_windows, unpad


@pytest.mark.parametrize("hw", [(1, 1), (17, 9), (16, 16), (31, 33)])
@pytest.mark.parametrize("mult", [1, 4, 16])
def test_pad_unpad_round_trip(hw: tuple[int, int], mult: int) -> None:
    x = np.random.default_rng(0).random((2, 3, *hw), dtype=np.float32)
    p, orig = pad_to_multiple(x, mult)
    assert p.shape[-2] % mult == 0 and p.shape[-1] % mult == 0
    assert orig == hw
    np.testing.assert_array_equal(unpad(p, orig), x)


def test_tile_windows_cover_and_overlap() -> None:
    wins = tile_windows(100, 40, 8)
    assert wins[0][0] == 0 and wins[-1][1] == 100
    for (_, a1), (b0, _) in zip(wins, wins[1:], strict=False):
        assert a1 - b0 >= 8
    assert tile_windows(30, 40, 8) == [(0, 30)]


def test_tiled_equals_untiled_for_pointwise_model() -> None:
    x = np.random.default_rng(1).random((1, 3, 70, 90), dtype=np.float32)

    def infer(b: np.ndarray) -> np.ndarray:
        assert b.shape[-2] % 8 == 0 and b.shape[-1] % 8 == 0
        return b * 1.5

    full = Enhancer(infer, 8)(x)
    tiled = Enhancer(infer, 8, tile=32, overlap=8)(x)
    np.testing.assert_allclose(tiled, full, atol=1e-6)
    assert full.max() <= 1.0


def test_bad_tile_is_rejected() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        Enhancer(lambda b: b, 16, tile=100)


def _capped_lift(b: np.ndarray, cap: tuple[float, ...] = (0.25, 0.4)) -> np.ndarray:
    """A model with the quality preset's scene-adaptive exposure: lift x2.4, capped on what it sees (like the graph)."""
    import torch

    from lle.models.unet import cap_exposure

    x = torch.from_numpy(b)
    return cap_exposure(x, x * 2.4, *cap).numpy()


def _luma(x: np.ndarray) -> np.ndarray:
    return np.einsum("nchw,c->nhw", x, np.array([0.299, 0.587, 0.114], np.float32))


@pytest.mark.parametrize("cap", [(0.25, 0.4), (0.2, 0.4, 0.25, 0.4, 0.6, 0.6)])
def test_tiles_keep_the_whole_images_exposure(cap) -> None:
    """Tiles of a moderately lit image (dark left, bright right) each see another mean, so the model caps each tile
    differently; with the card's exposure_cap the Enhancer keeps the whole image's exposure in every tile, in the
    tiled call and in the band-by-band stream alike."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(0.05, 0.5, 128, dtype=np.float32)[None, None, None, :]
    x = np.clip(ramp * (0.8 + 0.4 * rng.random((1, 3, 96, 128), dtype=np.float32)), 0, 1)
    model = functools.partial(_capped_lift, cap=cap)
    whole = Enhancer(model, 16)(x)
    from lle.pipeline import exposure_limit

    limit = float(exposure_limit(float(_luma(x).mean()), *cap))
    assert 0.2 < float(_luma(x).mean()) < 0.35 and abs(float(_luma(whole).mean()) - limit) < 0.005  # held at the cap
    naive = Enhancer(model, 16, tile=48, overlap=12)(x)
    fixed_enh = Enhancer(model, 16, tile=48, overlap=12, exposure_cap=cap)
    fixed = fixed_enh(x)

    def worst_column_gap(y: np.ndarray) -> float:
        return float(np.abs(_luma(y).mean(1) - _luma(whole).mean(1)).max())

    assert worst_column_gap(naive) > 0.1  # the dark tiles escape the cap: a bright band on the left
    assert worst_column_gap(fixed) < 0.02
    got = np.zeros_like(x)

    def emit(y0: int, y1: int, rows: np.ndarray) -> None:
        got[..., y0:y1, :] = rows

    fixed_enh.stream(96, 128, lambda a, b, c, d: x[..., a:b, c:d], emit)
    np.testing.assert_allclose(got, fixed, atol=1e-5)


def test_exposure_cap_leaves_tiles_of_a_dark_image_exact() -> None:
    """A dark image never reaches the cap: tiled with exposure_cap equals tiled without (bit for bit)."""
    x = np.random.default_rng(4).random((1, 3, 80, 100), dtype=np.float32) * 0.1
    a = Enhancer(_capped_lift, 16, tile=48, overlap=12)(x)
    b = Enhancer(_capped_lift, 16, tile=48, overlap=12, exposure_cap=(0.25, 0.4))(x)
    np.testing.assert_array_equal(a, b)
