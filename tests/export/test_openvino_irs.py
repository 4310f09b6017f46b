"""Exported OpenVINO IRs (FP32, FP16, INT8) loaded the way users load them: ``load_backend("auto", model.xml)``.

Parity against the torch backend on a size the export never checked, ``size_multiple`` read back from the IR, and for
the realtime preset the stateful call (state in, blended state out). Plus the mixed-precision contract of the INT8 IR:
a convolution the plan keeps float has no FakeQuantize on its input and no integer weights.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from lle.export.manifest import psnr, read_manifest
from lle.presets import PRESETS

pytest.importorskip("openvino")
pytestmark = pytest.mark.openvino



def _src(exported, preset: str, tmp_path: Path) -> Path:
    src, _ = exported[preset]
    work = tmp_path / preset
    shutil.copytree(src.parent, work)
    return work / src.name


def _frames(hw: tuple[int, int], n: int = 3) -> list[np.ndarray]:
    r = np.random.default_rng(7)
    return [r.random((1, 3, *hw), dtype=np.float32) * (0.15 + 0.1 * i) for i in range(n)]


def _check(be, ref, precision: str, tol: float) -> None:
    """``tol``: max abs diff for fp32/fp16, a PSNR floor in dB for int8."""

    def close(got: np.ndarray, want: np.ndarray, what: str) -> None:
        if precision == "int8":
            assert psnr(got, want) >= tol, (what, psnr(got, want))
        else:
            assert np.abs(got - want).max() <= tol, (what, np.abs(got - want).max())

    hw = (40, 72) if be.input_spec.size_multiple <= 8 else (48, 80)  # not a parity size of the export
    for i, x in enumerate(_frames(hw)):
        close(be.infer(x), ref.infer(x), f"infer {i}")
    if ref.stateful:
        assert be.stateful and be.input_spec.state_shape == ref.input_spec.state_shape
        s_be, s_ref = be.zero_state(), ref.zero_state()
        for i, (x, alpha) in enumerate(zip(_frames(hw), (0.0, 0.7, 0.9), strict=True)):
            y_be, s_be = be.infer_stateful(x, s_be, alpha)
            y_ref, s_ref = ref.infer_stateful(x, s_ref, alpha)
            close(y_be, y_ref, f"stateful {i}")
            assert np.abs(s_be - s_ref).max() <= (1e-3 if precision == "fp32" else 0.1), i
    else:
        assert not be.stateful


# INT8 floors, a few dB under what the tiny seeded models reach (NNCF, held-out calibration images and random frames
# through the backend): quality ~76 dB, realtime ~88 dB.
CASES = [("to_ov", "fp32", 1e-4), ("to_ov_fp16", "fp16", 1e-2), ("to_ov_int8", "int8", None)]
INT8_FLOOR = {"quality": 72.0, "realtime": 84.0}


@pytest.mark.parametrize(("step", "precision", "tol"), CASES)
@pytest.mark.parametrize("preset", PRESETS)
def test_exported_ir_runs_through_the_auto_backend(exported, export_cfg, tiny_weights, tmp_path, preset, step,
                                                   precision, tol) -> None:
    import lle.export.openvino_ir as ovir
    from lle.backends import load_backend
    from lle.models.checkpoint import load_card

    src = _src(exported, preset, tmp_path)
    xml = getattr(ovir, step)(src, src.parent, export_cfg, exported[preset][1])
    assert xml.suffix == ".xml" and xml.with_suffix(".bin").is_file()
    man = read_manifest(xml)
    assert man["precision"] == precision
    if precision == "int8":
        print(f"\n{preset} OpenVINO INT8 IR vs FP32 torch on held-out images: {man['parity']['psnr_db']:.2f} dB")
        assert man["parity"]["psnr_db"] >= INT8_FLOOR[preset]
    with load_backend("auto", xml) as be, load_backend("torch", tiny_weights[preset]) as ref:
        assert be.name == "openvino"
        assert be.input_spec.size_multiple == load_card(tiny_weights[preset]).size_multiple
        _check(be, ref, precision, INT8_FLOOR[preset] if tol is None else tol)


def test_int8_ir_keeps_the_planned_convolutions_float(exported, export_cfg, tmp_path, monkeypatch) -> None:
    """A plan that keeps the first and last convolution float: those two get no FakeQuantize and no int8 weights."""
    import onnx
    import openvino as ov

    import lle.export.mixed_precision as mp
    from lle.export.openvino_ir import to_ov_int8
    from lle.export.ort_quant import conv_names

    src = _src(exported, "quality", tmp_path)
    convs = conv_names(onnx.load(str(src)))
    keep = (convs[0], convs[-1])
    plan = mp.MixedPlan(float_layers=keep, n_convs=len(convs), int8_psnr=40.0, mixed_psnr=45.0,
                        mixed_worst_psnr=44.0, target_db=export_cfg.min_psnr)
    monkeypatch.setattr(mp, "mixed_plan", lambda *a, **k: plan)
    path = to_ov_int8(src, src.parent, dataclasses.replace(export_cfg, min_psnr=30.0), exported["quality"][1])
    kept = set(read_manifest(path)["mixed_precision"]["openvino_names"])
    assert len(kept) == 2

    model = ov.Core().read_model(str(path))
    int_types = {"i8", "u8", "i4", "u4"}

    def upstream(node, depth: int = 6) -> list:
        """The node and what feeds it through weight-decompression ops (Convert, Subtract, Multiply, Reshape)."""
        seen = [node]
        if depth and node.get_type_name() in ("Convert", "Subtract", "Multiply", "Reshape"):
            for i in range(node.get_input_size()):
                seen += upstream(node.input_value(i).get_node(), depth - 1)
        return seen

    quantized = 0
    for op in model.get_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "ConvolutionBackpropData"):
            continue
        act = op.input_value(0).get_node()
        weights = upstream(op.input_value(1).get_node())
        weight_int = any(n.get_type_name() in ("FakeQuantize",) or (
            n.get_type_name() == "Constant" and n.get_element_type().get_type_name() in int_types) for n in weights)
        if op.get_friendly_name() in kept:
            assert act.get_type_name() != "FakeQuantize", op.get_friendly_name()
            assert not weight_int, op.get_friendly_name()
        elif act.get_type_name() == "FakeQuantize" and weight_int:
            quantized += 1
    assert quantized >= len(convs) - 2 - 1  # the rest are INT8 (allowing one the quantizer fuses differently)
