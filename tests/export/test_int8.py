"""INT8: calibration set, ONNX Q/DQ (structure + PSNR), OpenVINO FP32 parity and NNCF INT8 (PSNR)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lle.errors import ExportError
from lle.export.manifest import psnr, read_manifest
from lle.presets import PRESETS

# Floors a few dB under what the tiny seeded models reach on the held-out images: ONNX Q/DQ 46.2 dB quality,
# 94.3 dB realtime (84.2 before calibration was streamed); OpenVINO NNCF 76.4 / 87.7 dB (the NNCF floors are in
# test_openvino_irs.py).
QDQ_FLOOR = {"quality": 43.0, "realtime": 80.0}
NNCF_FLOOR = {"realtime": 84.0}


def _workdir(exported, preset: str, tmp_path: Path) -> Path:
    src, _ = exported[preset]
    work = tmp_path / preset
    shutil.copytree(src.parent, work)
    return work / src.name


def test_calibration_set_is_seeded_preprocessed_and_holds_out(calib_factory) -> None:
    a, b = calib_factory(16), calib_factory(16)
    assert a == b and len(a) == 12 and len(a.holdout_paths) == 4
    assert not set(a.paths) & set(a.holdout_paths)
    x = next(iter(a))
    assert x.shape == a.shape == (1, 3, 64, 96) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.mean() < 0.35  # low light, like deployment data


def test_calibration_set_errors(tmp_path) -> None:
    from lle.errors import InputError
    from lle.export.calibration import CalibrationSet

    with pytest.raises(InputError, match="calibration folder not found"):
        CalibrationSet.from_dir(tmp_path / "nope", n=4, hw=(32, 32), multiple=4)
    with pytest.raises(InputError, match="has 0 images, need at least 5"):
        CalibrationSet.from_dir(tmp_path, n=4, hw=(32, 32), multiple=4)


@pytest.mark.parametrize("preset", PRESETS)
def test_qdq_int8_runs_and_reaches_min_psnr(exported, export_cfg, preset, tmp_path) -> None:
    import onnx

    from lle.export.onnx_export import load_reference, run_onnx
    from lle.export.ort_quant import check_qdq, to_qdq

    src = _workdir(exported, preset, tmp_path)
    path = to_qdq(src, src.parent, export_cfg, exported[preset][1])
    counts = check_qdq(onnx.load(str(path)))
    assert counts["convs"] == counts["per_channel_weights"] > 0
    ref = load_reference(src)
    got = psnr(np.concatenate([o.ravel() for o in run_onnx(path, ref["hold_x"])]),
               np.concatenate([r.ravel() for r in ref["hold_y"]]))
    print(f"\n{preset} ONNX Q/DQ INT8 vs FP32 torch on held-out images: {got:.2f} dB")
    assert got >= QDQ_FLOOR[preset]
    assert read_manifest(path)["parity"]["psnr_db"] == pytest.approx(min(got, 100.0), abs=1e-6)
    if preset == "quality":  # the scene-adaptive exposure stays known to the Enhancer's tiling
        from lle.backends.registry import load_backend

        assert read_manifest(path)["exposure_cap"] == [0.2, 0.4, 0.25, 0.4, 0.7, 0.7]
        with load_backend("ort", path) as b:
            assert b.input_spec.exposure_cap == (0.2, 0.4, 0.25, 0.4, 0.7, 0.7)


def test_qdq_structure_every_conv_quantized_zero_points_zero(exported, export_cfg, tmp_path) -> None:
    import onnx
    from onnx import numpy_helper

    from lle.export.ort_quant import to_qdq

    src = _workdir(exported, "realtime", tmp_path)
    m = onnx.load(str(to_qdq(src, src.parent, export_cfg, exported["realtime"][1])))
    producer = {o: n for n in m.graph.node for o in n.output}
    init = {t.name: t for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs
    for n in convs:
        assert producer[n.input[0]].op_type == "DequantizeLinear", n.name
        assert producer[n.input[1]].op_type == "DequantizeLinear", n.name
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            assert not numpy_helper.to_array(init[n.input[2]]).any()
    # The state/alpha blend is not quantized: no Q/DQ reads the graph's state or alpha input.
    q_inputs = {n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert not q_inputs & {"state", "alpha"}


def test_check_qdq_rejects_an_unquantized_conv(exported) -> None:
    import onnx

    from lle.export.ort_quant import check_qdq

    with pytest.raises(ExportError, match="input is not dequantized"):
        check_qdq(onnx.load(str(exported["quality"][0])))


def test_int8_without_calibration_is_a_clear_error(exported, export_cfg, tmp_path) -> None:
    from lle.export.ort_quant import to_qdq

    with pytest.raises(ExportError, match="needs calibration images"):
        to_qdq(exported["quality"][0], tmp_path, export_cfg, None)


@pytest.mark.openvino
def test_openvino_fp32_matches_torch(exported, export_cfg, tmp_path) -> None:
    """Realtime only (its video I/O is the harder case; OpenVINO compile time keeps the folder under 60 s)."""
    pytest.importorskip("openvino")
    from lle.export.openvino_ir import to_ov

    src = _workdir(exported, "realtime", tmp_path)
    path = to_ov(src, src.parent, export_cfg, None)
    assert path.with_suffix(".bin").is_file()
    man = read_manifest(path)
    assert man["parity"]["max_abs"] <= 1e-4 and man["inference_precision_hint"] == "f32"


@pytest.mark.openvino
def test_openvino_int8_reaches_min_psnr_and_keeps_state_in_float(exported, export_cfg, tmp_path) -> None:
    pytest.importorskip("nncf")
    import openvino as ov

    from lle.export.openvino_ir import to_ov_int8

    src = _workdir(exported, "realtime", tmp_path)
    path = to_ov_int8(src, src.parent, export_cfg, exported["realtime"][1])
    got = read_manifest(path)["parity"]["psnr_db"]
    print(f"\nrealtime OpenVINO NNCF INT8 vs FP32 torch on held-out images: {got:.2f} dB")
    assert got >= NNCF_FLOOR["realtime"]
    model = ov.Core().read_model(str(path))
    fq = [op for op in model.get_ops() if op.get_type_name() == "FakeQuantize"]
    assert fq
    for op in fq:
        src_names = {op.input_value(0).get_node().get_friendly_name()}
        assert not src_names & {"state", "alpha"}


def test_export_reports_calibration_progress_inside_the_int8_step(tiny_weights, export_cfg, calib_factory,
                                                                  tmp_path) -> None:
    from lle.export import export_model, resolve_target
    from lle.models.checkpoint import load_card

    w = tiny_weights["realtime"]
    calib = calib_factory(load_card(w).size_multiple)
    seen: list[tuple[float, int, str]] = []
    export_model(w, resolve_target("onnx", "int8"), tmp_path / "out", export_cfg, calib,
                 progress=lambda done, total, info: seen.append((done, total, info)))
    inside = [(d, info) for d, _, info in seen if "calibration" in info]
    assert len(inside) == len(calib)
    assert inside[-1][1].endswith(f"calibration {len(calib)}/{len(calib)}")
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == seen[-1][1]  # fractions of a step in between, never backwards
    assert any(d != int(d) for d in dones)


def test_nncf_tiles_cover_each_calibration_image(calib_factory) -> None:
    from lle.export.calibration import quadrants, to_nncf_dataset

    calib = calib_factory(16)
    ds = to_nncf_dataset(calib, lambda x: {"input": x}, tiles=True)
    items = [d["input"] for d in ds.get_inference_data()]
    assert len(items) == 4 * len(calib)
    for i, img in enumerate(calib):
        tiles = items[4 * i : 4 * i + 4]
        assert [t.shape for t in tiles] == [t.shape for t in quadrants(img, 16)]
        h, w = img.shape[-2:]
        th, tw = tiles[0].shape[-2:]
        assert th % 16 == 0 and tw % 16 == 0 and 2 * th >= h and 2 * tw >= w
        whole = np.zeros_like(img)
        for t, (y0, x0) in zip(tiles, [(0, 0), (0, w - tw), (h - th, 0), (h - th, w - tw)], strict=True):
            whole[..., y0 : y0 + th, x0 : x0 + tw] = t
        np.testing.assert_array_equal(whole, img)  # every pixel is in some tile, unchanged
    assert len(list(to_nncf_dataset(calib, lambda x: {"input": x}).get_inference_data())) == len(calib)
