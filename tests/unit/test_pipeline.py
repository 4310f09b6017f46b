from __future__ import annotations

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
