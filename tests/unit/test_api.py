"""lle.ImageEnhancer: arrays and PIL images in, the same kind out, equal to what lle enhance writes."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import lle
from lle.errors import InputError
from lle.io.image import read_image, write_image
from tests.conftest import dark_image


@pytest.fixture(scope="module")
def enhancer(tiny_weights):
    with lle.ImageEnhancer(tiny_weights["quality"], device="cpu") as enh:
        yield enh


def test_uint8_rgb_matches_lle_enhance(tmp_path, tiny_weights, enhancer) -> None:
    from lle.cli.app import app

    img = (dark_image(37, 53) * 255 + 0.5).astype(np.uint8)
    out = enhancer(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    write_image(tmp_path / "in.png", img.astype(np.float32) / 255)
    res = CliRunner().invoke(app, ["enhance", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"),
                                   "--weights", str(tiny_weights["quality"])])  # fmt: skip
    assert res.exit_code == 0, res.output
    ref = (read_image(tmp_path / "out.png")[0] * 255 + 0.5).astype(np.uint8)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_dtypes_and_layouts_round_trip(enhancer) -> None:
    f = dark_image(24, 40)
    out_f = enhancer(f)
    assert out_f.dtype == np.float32 and out_f.shape == f.shape and 0 <= out_f.min() and out_f.max() <= 1
    out16 = enhancer((f * 65535).astype(np.uint16))
    assert out16.dtype == np.uint16 and np.abs(out16 / 65535.0 - out_f).max() < 2e-3
    grey = enhancer((f[..., 1] * 255).astype(np.uint8))
    assert grey.shape == (24, 40) and grey.dtype == np.uint8
    rgba = np.concatenate([(f * 255).astype(np.uint8), np.full((24, 40, 1), 77, np.uint8)], axis=2)
    out_rgba = enhancer(rgba)
    assert out_rgba.shape == (24, 40, 4) and (out_rgba[..., 3] == 77).all()


def test_pil_images_keep_their_mode(enhancer) -> None:
    pil = pytest.importorskip("PIL.Image")
    img = pil.fromarray((dark_image(20, 30) * 255).astype(np.uint8))
    for mode in ("RGB", "RGBA", "L", "LA"):
        out = enhancer(img.convert(mode))
        assert out.mode == mode and out.size == (30, 20)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((4, 4, 2), np.uint8), r"shape \(4, 4, 2\) is not"),
        (np.zeros((0, 4, 3), np.uint8), r"shape \(0, 4, 3\) is not"),
        (np.zeros((4, 4, 3), np.int32), "dtype int32 is not supported"),
        (np.full((4, 4, 3), 2.0, np.float32), r"must be finite and in \[0, 1\]"),
        (np.full((4, 4, 3), np.nan, np.float32), r"must be finite and in \[0, 1\]"),
    ],
)
def test_bad_images_are_refused_clearly(enhancer, bad: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        enhancer(bad)


def test_missing_model_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match="model file not found"):
        lle.ImageEnhancer(tmp_path / "nope.safetensors").load()
    with pytest.raises(InputError, match="model file not found: qualty"):
        lle.ImageEnhancer("qualty").load()


def test_frame_graph_artifacts_are_refused(tmp_path, tiny_weights) -> None:
    pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import export_onnx
    from lle.models.checkpoint import load_model

    model, _ = load_model(tiny_weights["realtime"])
    path = tmp_path / "frames.onnx"
    export_onnx(model, path, io="uint8")
    with pytest.raises(InputError, match="video frames, not float images"):
        lle.ImageEnhancer(path, backend="onnxruntime").load()


def test_onnx_artifact_runs_through_the_api(tiny_onnx, enhancer) -> None:
    pytest.importorskip("onnxruntime")
    img = (dark_image(32, 48) * 255).astype(np.uint8)
    with lle.ImageEnhancer(tiny_onnx["quality"], backend="onnxruntime") as ort:
        out = ort(img)
    assert np.abs(out.astype(int) - enhancer(img).astype(int)).max() <= 1
