"""The Q/DQ pieces of INT8 export: activation ranges, the Q/DQ writer and its TensorRT-convention check.

Shared by the ONNX Q/DQ step (:mod:`lle.export.ort_quant`) and the mixed-precision search
(:mod:`lle.export.mixed_precision`), which both sit above this module.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lle._atomic import atomic_path
from lle._lazy import require
from lle.errors import ExportError

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet

__all__ = ["QUANT_OPS", "calibrate_ranges", "check_qdq", "conv_names", "write_qdq"]

log = logging.getLogger(__name__)

QUANT_OPS = ("Conv", "ConvTranspose")
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def calibrate_ranges(src: Path, calib: CalibrationSet, *, method: str = "minmax", chunk: int = 4) -> Any:
    """Activation ranges of every convolution input of ``src`` over ``calib`` (an onnxruntime ``TensorsData``).

    Images are fed ``chunk`` at a time: onnxruntime's calibrators keep every intermediate tensor of a batch in memory
    (gigabytes per image at 720p for the quality preset); min/max and histograms are merged across chunks.

    Raises:
        ExportError: the calibrator failed.
    """
    quant = require("onnxruntime.quantization", extra="onnx")
    from lle.export.calibration import ort_reader
    from lle.export.onnx_export import graph_feed

    feed = graph_feed(Path(src))
    paths = calib.paths
    try:
        with tempfile.TemporaryDirectory(prefix="lle-calib-") as tmp:
            calibrator = quant.create_calibrator(
                Path(src), list(QUANT_OPS), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                calibrate_method=getattr(quant.CalibrationMethod, _METHODS[method]),
                extra_options={"symmetric": True, "moving_average": False, "percentile": 99.999},
            )  # fmt: skip
            for i in range(0, len(paths), chunk):
                part = dataclasses.replace(calib, paths=paths[i : i + chunk])
                calibrator.collect_data(ort_reader(part, feed))
            ranges = calibrator.compute_data()
            del calibrator
    except Exception as err:
        raise ExportError(f"INT8 calibration of {Path(src).name} failed: {str(err).splitlines()[0]}") from err
    return ranges


def write_qdq(src: Path, dst: Path, ranges: Any, *, keep_float: Sequence[str] = (),
              only: Sequence[str] | None = None) -> Path:
    """Write the Q/DQ graph of ``src`` with activation ``ranges`` to ``dst`` (atomically).

    ``keep_float`` names convolutions left in float (mixed precision); ``only``, when given, quantizes just those.

    Raises:
        ExportError: the quantizer failed.
    """
    quant = require("onnxruntime.quantization", extra="onnx")
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    src, dst = Path(src), Path(dst)
    try:
        with tempfile.TemporaryDirectory(prefix="lle-qdq-") as work:
            staged = Path(work) / src.name  # shape inference writes a sibling file: keep it out of the export dir
            shutil.copyfile(src, staged)
            model = load_model_with_shape_infer(staged)
        quantizer = QDQQuantizer(
            model, True, False, quant.QuantType.QInt8, quant.QuantType.QInt8, ranges,
            list(only) if only is not None else None, list(keep_float), list(QUANT_OPS),
            {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False, "DedicatedQDQPair": False},
        )  # fmt: skip
        quantizer.quantize_model()
        with atomic_path(dst) as tmp:
            quantizer.model.save_model_to_file(str(tmp), False)
    except Exception as err:
        raise ExportError(f"Q/DQ quantization of {src.name} failed: {str(err).splitlines()[0]}") from err
    return dst


def conv_names(model: Any) -> list[str]:
    """Names of the quantizable convolutions of an ``onnx.ModelProto``, in graph order."""
    return [n.name for n in model.graph.node if n.op_type in QUANT_OPS]


def check_qdq(model: Any, keep_float: Sequence[str] = ()) -> dict[str, int]:
    """Check the TensorRT Q/DQ conventions on an ``onnx.ModelProto``; returns counts of what was checked.

    Every Conv/ConvTranspose except those named in ``keep_float`` (mixed precision) reads its data and weight
    through DequantizeLinear, weights are INT8 initialisers (per-channel scales), and every zero point is 0.

    Raises:
        ExportError: naming the first node that breaks a convention.
    """
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    const = {n.output[0]: n.attribute[0].t for n in g.node if n.op_type == "Constant"}
    producer = {o: n for n in g.node for o in n.output}
    counts = {"convs": 0, "float_convs": 0, "qdq_pairs": 0, "per_channel_weights": 0}
    floats = set(keep_float)
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = init.get(n.input[2]) or const.get(n.input[2])
            if zp is not None and numpy_helper.to_array(zp).any():
                raise ExportError(f"{n.op_type} {n.name!r} has a non-zero zero point; TensorRT needs symmetric INT8")
        if n.op_type == "QuantizeLinear":
            counts["qdq_pairs"] += 1
        if n.op_type not in QUANT_OPS:
            continue
        if n.name in floats:
            counts["float_convs"] += 1
            continue
        counts["convs"] += 1
        for slot, what in ((0, "data"), (1, "weight")):
            dq = producer.get(n.input[slot])
            if dq is None or dq.op_type != "DequantizeLinear":
                raise ExportError(f"{n.op_type} {n.name!r}: {what} input is not dequantized (no Q/DQ in front)")
            if slot == 1:
                w = init.get(dq.input[0])
                scale = init.get(dq.input[1])
                if w is None or w.data_type != 3:  # TensorProto.INT8
                    raise ExportError(f"{n.op_type} {n.name!r}: weight is not an INT8 initialiser")
                if scale is not None and len(scale.dims) == 1 and scale.dims[0] > 1:
                    counts["per_channel_weights"] += 1
    if counts["convs"] == 0:
        raise ExportError("the Q/DQ graph has no quantized convolutions")
    return counts
