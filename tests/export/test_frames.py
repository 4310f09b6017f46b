"""uint8 frame graphs (``--io uint8``): any H x W, same result as the float32 path within one level, every runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lle.export.config import ExportConfig
from lle.presets import PRESETS

SIZES = [(1, 1), (1, 7), (7, 3), (37, 53), (64, 96)]


def _frames(h: int, w: int, n: int = 1, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    return (255.0 * g.random((n, h, w, 3)) ** 2).astype(np.uint8)


def _float_reference(weights: Path, frames: np.ndarray) -> np.ndarray:
    """What the float32 NCHW path gives: BGR uint8 -> RGB float -> model (padded, clipped) -> BGR uint8."""
    import torch

    from lle.models.checkpoint import load_model
    from lle.pipeline import Enhancer

    model, card = load_model(weights)

    def infer(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    x = frames[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    y = Enhancer(infer, card.size_multiple)(np.ascontiguousarray(x))
    return (np.clip(y, 0, 1) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)[..., ::-1]


@pytest.fixture(scope="module")
def frame_onnx(tiny_weights, tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("onnxruntime")
    from lle.export.onnx_export import to_onnx

    cfg = ExportConfig(parity_hw=((32, 48),), io="uint8")
    return {p: to_onnx(w, tmp_path_factory.mktemp(f"u8-{p}"), cfg, None) for p, w in tiny_weights.items()}


@pytest.mark.parametrize("preset", PRESETS)
def test_uint8_onnx_any_size_matches_float_path_within_one_level(frame_onnx, tiny_weights, preset) -> None:
    from lle.backends.registry import load_backend
    from lle.export.manifest import read_manifest

    path = frame_onnx[preset]
    assert read_manifest(path)["graph_io"] == "uint8" and read_manifest(path)["parity"]["passed"]
    with load_backend("onnxruntime", path) as be:
        spec = be.input_spec
        assert spec.frames and spec.channels == "BGR" and spec.size_multiple == 1
        for n, (h, w) in enumerate(SIZES):
            x = _frames(h, w, n=2 if n == 3 else 1, seed=n)
            y = be.infer(x)
            assert y.shape == x.shape and y.dtype == np.uint8
            diff = np.abs(y.astype(int) - _float_reference(tiny_weights[preset], x).astype(int))
            assert diff.max() <= 1, (h, w, diff.max())


def test_uint8_openvino_ir_through_the_backend(frame_onnx, tiny_weights, tmp_path) -> None:
    pytest.importorskip("openvino")
    from lle.backends.registry import load_backend
    from lle.export.openvino_ir import to_ov, to_ov_fp16

    cfg = ExportConfig(parity_hw=((32, 48),), io="uint8")
    src = frame_onnx["realtime"]
    for step, tol in ((to_ov, 1), (to_ov_fp16, 4)):
        xml = step(src, tmp_path, cfg, None)
        with load_backend("auto", xml) as ov_be, load_backend("onnxruntime", src) as ort_be:
            assert ov_be.input_spec.frames and ov_be.stateful
            for h, w in SIZES:
                x = _frames(h, w)
                y = ov_be.infer(x)
                ref = _float_reference(tiny_weights["realtime"], x)
                assert y.shape == x.shape and y.dtype == np.uint8
                assert np.abs(y.astype(int) - ref.astype(int)).max() <= tol, (step.__name__, h, w)
            x = _frames(40, 64)
            st = ov_be.zero_state(1)
            (y_ov, s_ov), (y_ort, s_ort) = ov_be.infer_stateful(x, st, 0.0), ort_be.infer_stateful(x, st, 0.0)
            y2_ov, _ = ov_be.infer_stateful(x, s_ov, 0.5)
            y2_ort, _ = ort_be.infer_stateful(x, s_ort, 0.5)
            assert np.abs(y_ov.astype(int) - y_ort.astype(int)).max() <= tol
            assert np.abs(y2_ov.astype(int) - y2_ort.astype(int)).max() <= tol
            assert np.abs(s_ov - s_ort).max() < (1e-3 if tol == 1 else 5e-2)


def test_torch_backend_frames_option_matches_the_exported_graph(frame_onnx, tiny_weights) -> None:
    from lle.backends.registry import load_backend

    x = _frames(37, 53)
    with load_backend("torch", tiny_weights["realtime"], frames=True) as t, \
            load_backend("onnxruntime", frame_onnx["realtime"]) as o:
        assert t.input_spec.frames
        st = t.zero_state(1)
        (yt, stt), (yo, sto) = t.infer_stateful(x, st, 0.0), o.infer_stateful(x, st, 0.0)
        assert np.abs(yt.astype(int) - yo.astype(int)).max() <= 1
        np.testing.assert_allclose(stt, sto, atol=1e-4)


def test_int8_and_fp16_steps_refuse_a_uint8_graph(frame_onnx, tmp_path) -> None:
    from lle.errors import ExportError
    from lle.export.onnx_fp16 import to_onnx_fp16

    with pytest.raises(ExportError, match="needs a float32 NCHW graph") as err:
        to_onnx_fp16(frame_onnx["realtime"], tmp_path, ExportConfig(), None)
    assert "--io float32" in (err.value.hint or "")


def test_io_auto_resolves_per_preset_and_target() -> None:
    from lle.errors import ConfigError
    from lle.export.config import resolve_io

    assert resolve_io(ExportConfig(format="openvino", precision="fp16"), "realtime") == "uint8"
    assert resolve_io(ExportConfig(), "quality") == "float32"
    assert resolve_io(ExportConfig(io="uint8"), "quality") == "uint8"
    assert resolve_io(ExportConfig(format="tensorrt", precision="fp16"), "realtime") == "float32"
    with pytest.raises(ConfigError, match="--io uint8 is for ONNX/OpenVINO"):
        ExportConfig(format="onnx-int8", precision="int8", io="uint8")


@pytest.mark.parametrize("highlight", [0.0, 0.75])
def test_frame_graph_with_desaturation_matches_the_float_model(highlight: float) -> None:
    import torch

    from lle.models.frames import RealtimeFrameGraph
    from lle.models.realtime import RealtimeUNet

    torch.manual_seed(0)
    m = RealtimeUNet(width=4, depth=2, lowres=16, desaturation=0.3, highlight=highlight).eval()
    with torch.no_grad():
        for p in (m.head.weight, m.colour.weight):
            p.normal_(0, 0.2)
        m.head.bias[0] = 2.0  # a strong lift, where desaturation and the highlight cap act
    x = torch.from_numpy(_frames(37, 53))
    with torch.no_grad():
        y8, _ = RealtimeFrameGraph(m)(x)
        xf = x.permute(0, 3, 1, 2).float().flip(1) / 255.0
        yf = m(xf)
    ref = (yf.clamp(0, 1) * 255 + 0.5).to(torch.uint8).flip(1).permute(0, 2, 3, 1)
    assert int((y8.int() - ref.int()).abs().max()) <= 1
