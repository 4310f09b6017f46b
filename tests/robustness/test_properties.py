"""Property-based tests: pad/tile/crop arithmetic, band-streamed tiling, memory plans and image round trips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lle.enhance import MIN_TILE, enhance_file, plan_memory
from lle.errors import InputError
from lle.io.image import decode_planes, probe_image
from lle.pipeline import Enhancer, pad_to_multiple, tile_windows, unpad

# Derandomized: CI sees the same examples on every run (a failure is reproducible, never a lucky draw).
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(h=st.integers(1, 70), w=st.integers(1, 70), mult=st.sampled_from([1, 2, 8, 16, 32]))
def test_pad_then_unpad_is_identity(h: int, w: int, mult: int) -> None:
    x = np.random.default_rng(h * 100 + w).random((1, 3, h, w), dtype=np.float32)
    p, hw = pad_to_multiple(x, mult)
    assert hw == (h, w)
    assert p.shape[2] % mult == 0 and p.shape[3] % mult == 0
    assert p.shape[2] - h < mult and p.shape[3] - w < mult
    np.testing.assert_array_equal(unpad(p, hw), x)
    np.testing.assert_array_equal(p[..., h:, :w], np.repeat(x[..., -1:, :], p.shape[2] - h, axis=2))


@FAST
@given(size=st.integers(1, 5000), tile=st.integers(2, 600), frac=st.floats(0.0, 0.5))
def test_tile_windows_cover_with_overlap(size: int, tile: int, frac: float) -> None:
    overlap = int(tile * frac)
    wins = tile_windows(size, tile, overlap)
    assert wins[0][0] == 0 and wins[-1][1] == size
    for a, b in wins:
        assert 0 <= a < b <= size and b - a == min(tile, size)
    for (a0, b0), (a1, b1) in zip(wins, wins[1:], strict=False):
        assert a0 < a1 and b0 < b1 and b0 - a1 >= overlap  # no gap, at least ``overlap`` shared


def _window_dependent(x: np.ndarray) -> np.ndarray:
    """A 'model' whose output depends on the whole window (so a blending mistake shows)."""
    return np.clip(0.6 * x + x.mean(axis=(2, 3), keepdims=True) * 0.5 + 0.05, 0.0, 1.2).astype(np.float32)


@FAST
@given(
    h=st.integers(1, 90), w=st.integers(1, 90), mult=st.sampled_from([1, 4, 8]),
    tile_units=st.integers(2, 8), ov=st.integers(0, 12),
)  # fmt: skip
def test_band_stream_equals_whole_image_tiling(h: int, w: int, mult: int, tile_units: int, ov: int) -> None:
    tile = tile_units * 8
    overlap = min(ov, tile // 2)
    enh = Enhancer(_window_dependent, mult, tile=tile, overlap=overlap)
    x = np.random.default_rng(h + 7 * w).random((1, 3, h, w), dtype=np.float32)
    expected = enh(x.copy())
    got = np.full_like(x, np.nan)
    rows_seen: list[tuple[int, int]] = []

    def emit(y0: int, y1: int, rows: np.ndarray) -> None:
        rows_seen.append((y0, y1))
        got[..., y0:y1, :] = rows

    enh.stream(h, w, lambda y0, y1, x0, x1: x[..., y0:y1, x0:x1].copy(), emit)
    assert rows_seen[0][0] == 0 and rows_seen[-1][1] == h
    assert all(a[1] == b[0] for a, b in zip(rows_seen, rows_seen[1:], strict=False))  # each row once, in order
    np.testing.assert_allclose(got, expected, atol=1e-5)


@FAST
@given(
    h=st.integers(1, 40000), w=st.integers(1, 40000), budget_gb=st.floats(0.05, 8.0),
    mult=st.sampled_from([1, 16, 32]),
)  # fmt: skip
def test_memory_plan_fits_the_budget_or_refuses(h: int, w: int, budget_gb: float, mult: int) -> None:
    budget = int(budget_gb * (1 << 30))
    kw = {"tile": 2048, "size_multiple": mult, "model_bytes_per_px": 2560, "base": 300 << 20}
    try:
        plan = plan_memory(h, w, budget=budget, **kw)
    except InputError as err:
        assert f"{w}x{h}" in str(err) and "--max-memory" in (err.hint or "")
        return
    assert plan.peak <= budget
    assert plan.tile % mult == 0 and plan.tile <= 2048
    assert plan.tile >= min(2048, -(-MIN_TILE // mult) * mult)
    bigger = plan_memory(h, w, budget=budget * 2, **kw)
    assert bigger.tile >= plan.tile


_KINDS = ["rgb8", "rgb16", "grey8", "grey16", "rgba8", "rgba16"]


def _image(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    top = 65535 if kind.endswith("16") else 255
    dtype = np.uint16 if kind.endswith("16") else np.uint8
    planes = {"rgb": 3, "grey": 1, "rgba": 4}[kind.rstrip("0123456789")]
    img = r.integers(0, top + 1, (h, w, planes)).astype(dtype)
    return img[..., 0] if planes == 1 else img


@pytest.fixture(scope="module")
def identity() -> Enhancer:
    enh = Enhancer(lambda x: x.copy(), 16, tile=48, overlap=12)
    enh.bytes_per_px = 64
    return enh


@FAST
@given(kind=st.sampled_from(_KINDS), h=st.integers(1, 70), w=st.integers(1, 70), seed=st.integers(0, 99))
def test_png_round_trip_through_enhance_file_is_lossless(
    tmp_path: Path, identity: Enhancer, kind: str, h: int, w: int, seed: int
) -> None:
    """An identity model through the band-streamed, tiled path gives back the very same PNG pixels."""
    img = _image(kind, h, w, seed)
    src, dst = tmp_path / f"in_{kind}.png", tmp_path / f"out_{kind}.png"
    cv2.imwrite(str(src), img)
    header = probe_image(src)
    assert header is not None and (header.width, header.height) == (w, h)
    assert header.depth == (16 if kind.endswith("16") else 8)
    bgr, depth, alpha, grey = decode_planes(src)
    assert bgr.shape == (h, w, 3) and depth == header.depth and grey == kind.startswith("grey")
    assert (alpha is not None) == kind.startswith("rgba")
    enhance_file(src, dst, identity, max_memory=8 << 30)
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


@FAST
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 99), suffix=st.sampled_from([".jpg", ".webp"]))
@example(h=4, w=4, seed=0, suffix=".jpg")  # 3.2 levels of mean error: what a tiny JPEG loses to chroma subsampling
def test_lossy_formats_round_trip_within_codec_error(
    tmp_path: Path, identity: Enhancer, h: int, w: int, seed: int, suffix: str
) -> None:
    img = cv2.GaussianBlur(_image("rgb8", h, w, seed), (5, 5), 2.0)
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    cv2.imwrite(str(src), img, [cv2.IMWRITE_JPEG_QUALITY, 100] if suffix == ".jpg" else [cv2.IMWRITE_WEBP_QUALITY, 101])
    enhance_file(src, dst, identity, max_memory=8 << 30)
    a, b = cv2.imread(str(src)), cv2.imread(str(dst))
    assert a.shape == b.shape == (h, w, 3)
    # One more lossy encode (lle writes JPEG at quality 95, 4:2:0 chroma): tiny images lose most to the chroma
    # subsampling, so the bound is a PSNR (about 3 levels of mean error), not a per-pixel one.
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    assert mse == 0 or 10 * np.log10(255.0**2 / mse) >= 30.0, mse
