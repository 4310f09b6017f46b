"""`lle enhance` keeps what a photo library holds: alpha, greyscale and 16 bits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app


@pytest.fixture
def weights(tiny_weights):
    return str(tiny_weights["quality"])


def _run(src, out, weights) -> None:
    r = CliRunner().invoke(app, ["enhance", str(src), "-o", str(out), "--weights", weights])
    assert r.exit_code == 0, r.output


def test_rgba_png_keeps_its_alpha(tmp_path, weights) -> None:
    img = np.zeros((20, 30, 4), np.uint8)
    img[..., :3] = 40
    img[..., 3] = np.linspace(0, 255, 30).astype(np.uint8)[None]
    src, out = tmp_path / "a.png", tmp_path / "out.png"
    cv2.imwrite(str(src), img)
    _run(src, out, weights)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (20, 30, 4)
    np.testing.assert_array_equal(got[..., 3], img[..., 3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_png_stays_grey_and_keeps_its_depth(tmp_path, weights, dtype) -> None:
    top = 255 if dtype == np.uint8 else 65535
    img = (np.linspace(0.02, 0.3, 30)[None].repeat(20, 0) * top).astype(dtype)
    src, out = tmp_path / "g.png", tmp_path / "out.png"
    cv2.imwrite(str(src), img)
    _run(src, out, weights)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (20, 30) and got.dtype == dtype


def test_jpeg_output_of_an_rgba_input_drops_alpha_cleanly(tmp_path, weights) -> None:
    img = np.full((16, 16, 4), 50, np.uint8)
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), img)
    out = tmp_path / "o"
    out.mkdir()
    r = CliRunner().invoke(app, ["enhance", str(src), "-o", str(out / "a.jpg"), "--weights", weights])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(out / "a.jpg")).shape == (16, 16, 3)
