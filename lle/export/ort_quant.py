"""FP32 ONNX -> INT8 Q/DQ ONNX with onnxruntime's static quantizer, in the form TensorRT builds INT8 from.

Conventions follow NVIDIA Model Optimizer's ONNX PTQ (the reference producer of TensorRT Q/DQ graphs):
QuantizeLinear/DequantizeLinear pairs (QDQ format), INT8 weights per output channel and symmetric, INT8 activations
symmetric (zero point 0: TensorRT only accepts zero points of 0), biases left in FP32, and only the inputs of
convolutions quantized. Element-wise ops, the resize and the realtime graph's ``state``/``alpha`` blend stay FP32,
so the temporal state is never squeezed through an 8-bit range calibrated on still images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lle._lazy import require
from lle.errors import ExportError

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["QUANT_OPS", "check_qdq", "quantize_qdq", "to_qdq"]

log = logging.getLogger(__name__)

QUANT_OPS = ("Conv", "ConvTranspose")
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def quantize_qdq(src: Path, dst: Path, calib: CalibrationSet, *, method: str = "minmax") -> Path:
    """Quantize ``src`` to ``dst`` on ``calib`` (see the module docstring for the conventions).

    Raises:
        ExportError: the quantizer failed.
    """
    quant = require("onnxruntime.quantization", extra="onnx")
    from lle.export.calibration import ort_reader
    from lle.export.onnx_export import graph_feed

    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        quant.quantize_static(
            str(src), str(tmp), ort_reader(calib, graph_feed(src)),
            quant_format=quant.QuantFormat.QDQ,
            activation_type=quant.QuantType.QInt8,
            weight_type=quant.QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANT_OPS),
            calibrate_method=getattr(quant.CalibrationMethod, _METHODS[method]),
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "DedicatedQDQPair": False,
                "CalibMovingAverage": False,
                "CalibPercentile": 99.999,
            },
        )  # fmt: skip
        tmp.replace(dst)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"Q/DQ quantization of {src.name} failed: {str(err).splitlines()[0]}") from err
    finally:
        for p in dst.parent.glob("augmented_model*.onnx"):
            p.unlink(missing_ok=True)
    return dst


def check_qdq(model: Any) -> dict[str, int]:
    """Check the TensorRT Q/DQ conventions on an ``onnx.ModelProto``; returns counts of what was checked.

    Every Conv/ConvTranspose reads its data and weight through DequantizeLinear, weights are INT8 initialisers
    (per-channel scales), and every zero point is 0.

    Raises:
        ExportError: naming the first node that breaks a convention.
    """
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    const = {n.output[0]: n.attribute[0].t for n in g.node if n.op_type == "Constant"}
    producer = {o: n for n in g.node for o in n.output}
    counts = {"convs": 0, "qdq_pairs": 0, "per_channel_weights": 0}
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2:
            zp = init.get(n.input[2]) or const.get(n.input[2])
            if zp is not None and numpy_helper.to_array(zp).any():
                raise ExportError(f"{n.op_type} {n.name!r} has a non-zero zero point; TensorRT needs symmetric INT8")
        if n.op_type == "QuantizeLinear":
            counts["qdq_pairs"] += 1
        if n.op_type not in QUANT_OPS:
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
        raise ExportError("the Q/DQ graph has no convolutions")
    return counts


def to_qdq(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ``model.onnx`` -> ``model.int8.qdq.onnx``, structure-checked, PSNR-checked on held-out images.

    Raises:
        ExportError: no calibration set, or the graph breaks a Q/DQ convention.
        ParityError: PSNR vs the torch FP32 output below ``cfg.min_psnr``.
    """
    onnx = require("onnx", extra="onnx")
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest
    from lle.export.onnx_export import load_reference, onnx_io, run_onnx

    if calib is None:
        raise ExportError("INT8 export needs calibration images", hint="pass --calib DIR (e.g. calibration_data/)")
    src = Path(src)
    path = quantize_qdq(src, Path(out_dir) / "model.int8.qdq.onnx", calib, method=cfg.calibration.method)
    counts = check_qdq(onnx.load(str(path)))
    ref = load_reference(src)
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    parity = compare(run_onnx(path, xs), ys, kind="psnr", threshold=cfg.min_psnr)
    src_m = read_manifest(src)
    write_manifest(path, format="onnx", precision="int8", preset=src_m.get("preset"), io=onnx_io(path),
                   parity=parity, qdq=counts, parity_on="held-out calibration images" if ref["hold_x"] else "random",
                   calibration={"n": len(calib), "hw": list(calib.hw), "method": cfg.calibration.method,
                                "symmetric_activations": True, "per_channel_weights": True, "ops": list(QUANT_OPS)},
                   source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)})
    check_parity(parity, path)
    return path
