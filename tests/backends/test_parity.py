"""Golden parity: torch, onnxruntime and OpenVINO agree within the exporter's FP32 tolerance, both presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lle.backends import auto_backend, backend_class, list_backends, load_backend
from lle.errors import BackendError, ConfigError
from lle.export.config import ExportConfig

pytest.importorskip("torch")

PRESETS = ("quality", "realtime")
ATOL = ExportConfig().atol_fp32  # the tolerance the exporter's own parity check applies
RUNTIMES = [("onnxruntime", "onnxruntime"), pytest.param("openvino", "openvino", marks=pytest.mark.openvino)]


def _frames(n: int = 3) -> list[np.ndarray]:
    r = np.random.default_rng(0)
    return [r.random((1, 3, 48, 64), dtype=np.float32) * (0.2 + 0.1 * i) for i in range(n)]


@pytest.mark.parametrize(("name", "module"), RUNTIMES)
@pytest.mark.parametrize("preset", PRESETS)
def test_parity_with_torch(preset: str, name: str, module: str, tiny_weights: dict, tiny_onnx: dict) -> None:
    pytest.importorskip(module)
    with load_backend("torch", tiny_weights[preset]) as ref, load_backend(name, tiny_onnx[preset]) as be:
        assert be.input_spec.size_multiple == ref.input_spec.size_multiple
        assert be.input_spec.state_shape == ref.input_spec.state_shape
        for x in _frames():
            np.testing.assert_allclose(be.infer(x), ref.infer(x), atol=ATOL)
        if preset == "realtime":
            s_ref, s_be = ref.zero_state(), be.zero_state()
            for x, alpha in zip(_frames(), (0.0, 0.8, 0.9), strict=True):
                y_ref, s_ref = ref.infer_stateful(x, s_ref, alpha)
                y_be, s_be = be.infer_stateful(x, s_be, alpha)
                np.testing.assert_allclose(y_be, y_ref, atol=ATOL)
                np.testing.assert_allclose(s_be, s_ref, atol=ATOL)
        else:
            assert not be.stateful
            with pytest.raises(BackendError, match="no temporal state"):
                be.infer_stateful(_frames(1)[0], np.zeros((1, 5, 4, 4), np.float32), 0.5)


def test_stateful_alpha_zero_is_single_image(tiny_weights: dict) -> None:
    with load_backend("torch", tiny_weights["realtime"]) as be:
        x = _frames(1)[0]
        y, _ = be.infer_stateful(x, be.zero_state(), 0.0)
        np.testing.assert_allclose(y, be.infer(x), atol=1e-6)


def test_openvino_fp32_runs_f32(tiny_onnx: dict) -> None:
    pytest.importorskip("openvino")
    with load_backend("ov", tiny_onnx["quality"]) as be:
        assert be.describe().extra["inference_precision"] == "f32"


def test_input_checks(tiny_onnx: dict) -> None:
    pytest.importorskip("onnxruntime")
    with load_backend("ort", tiny_onnx["quality"]) as be:
        with pytest.raises(BackendError, match="not a multiple of 16"):
            be.infer(np.zeros((1, 3, 20, 32), np.float32))
        with pytest.raises(BackendError, match="expected"):
            be.infer(np.zeros((1, 3, 32, 32), np.float64))


def test_auto_and_registry(tiny_onnx: dict, tmp_path: Path) -> None:
    assert {"torch", "onnxruntime", "openvino", "tensorrt"} <= set(list_backends())
    assert auto_backend(Path("m.safetensors")) == "torch"
    assert auto_backend(Path("m.onnx")) in {"onnxruntime", "openvino"}
    assert backend_class("trt").name == "tensorrt"
    with pytest.raises(ConfigError, match="unknown model type"):
        auto_backend(Path("m.bin"))
    with pytest.raises(ConfigError, match="valid backends"):
        backend_class("nope")


@pytest.mark.parametrize(("name", "module"), [("ort", "onnxruntime"), ("ov", "openvino")])
def test_bad_artifacts(name: str, module: str, tmp_path: Path, tiny_weights: dict) -> None:
    pytest.importorskip(module)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot (load|read) junk.onnx"):
        load_backend(name, junk)
    with pytest.raises(BackendError, match=r"\.onnx"):
        load_backend(name, tiny_weights["quality"])


def test_wrong_model_io(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    p = tmp_path / "other.onnx"
    onnx.save(m, p)
    with pytest.raises(BackendError, match="not an lle model"):
        load_backend("ort", p)


def test_tensorrt_missing_is_one_line(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt installed")
    from lle.errors import MissingDependencyError

    engine = tmp_path / "m.plan"
    engine.write_bytes(b"x")
    with pytest.raises(MissingDependencyError) as info:
        load_backend("trt", engine)
    assert "lle[tensorrt]" in (info.value.hint or "")


def test_trt_engine_size_multiple() -> None:
    from lle.backends.trt_backend import engine_size_multiple

    assert engine_size_multiple({"size_multiple": 8, "preset": "realtime"}) == 8
    assert engine_size_multiple({"preset": "quality"}) == 16
