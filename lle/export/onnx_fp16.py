"""FP32 ONNX -> mixed-precision (autocast) FP16 ONNX with FP32 inputs and outputs.

This is the FP16 input for a strongly typed TensorRT network: the precision of every tensor is written in the graph,
so TensorRT 10/11 needs no FP16 builder flag. Compute runs in FP16; graph inputs and outputs stay FP32 (a Cast at each
boundary), inputs that ONNX requires in FP32 (Resize ``scales``) stay FP32, and ops in ``keep_fp32`` run in FP32.
Initialisers used only by FP16 consumers are stored as FP16, which halves the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.errors import ExportError

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["DEFAULT_KEEP_FP32", "convert_to_fp16", "to_onnx_fp16"]

# Input slots that the ONNX spec types as float32 whatever the data type (Resize-13+ ``scales``).
_FP32_SLOTS: dict[str, frozenset[int]] = {"Resize": frozenset({2}), "Upsample": frozenset({1})}
# Reductions over many values lose precision in fp16 accumulation; none is in the presets today, listed for safety.
DEFAULT_KEEP_FP32: frozenset[str] = frozenset({"ReduceSum", "ReduceSumSquare", "ReduceL2", "Softmax", "Range"})

_FLOAT, _HALF = 1, 10  # onnx.TensorProto.FLOAT, FLOAT16


def convert_to_fp16(model: Any, *, keep_fp32: Iterable[str] = DEFAULT_KEEP_FP32) -> Any:
    """Return an FP16 copy of the ``onnx.ModelProto`` ``model`` with FP32 graph inputs/outputs.

    Raises:
        ExportError: the graph has no shape/type information for an intermediate tensor.
    """
    onnx = require("onnx", extra="onnx")
    from onnx import helper, numpy_helper

    keep = frozenset(keep_fp32)
    m = onnx.shape_inference.infer_shapes(model)
    g = m.graph
    dtype: dict[str, int] = {}
    for v in [*g.input, *g.output, *g.value_info]:
        dtype[v.name] = v.type.tensor_type.elem_type
    for t in g.initializer:
        dtype[t.name] = t.data_type
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    dtype[n.output[0]] = a.t.data_type

    def want(node: Any, slot: int) -> int:
        if node.op_type in keep or slot in _FP32_SLOTS.get(node.op_type, frozenset()):
            return _FLOAT
        return _HALF

    # Constants and initialisers that only FP16 slots read are converted in place, not cast at run time.
    readers: dict[str, set[int]] = {}
    for n in g.node:
        for i, name in enumerate(n.input):
            if name and dtype.get(name) == _FLOAT:
                readers.setdefault(name, set()).add(want(n, i))
    outputs = {o.name for o in g.output}
    halve = {k for k, v in readers.items() if v == {_HALF} and k not in outputs}
    for t in g.initializer:
        if t.name in halve and t.data_type == _FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    cur = {k: v for k, v in dtype.items()}
    cur.update({t.name: t.data_type for t in g.initializer})

    nodes: list[Any] = []
    casts: dict[tuple[str, int], str] = {}
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] in halve:
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == _FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
            cur[n.output[0]] = _HALF
            nodes.append(n)
            continue
        for i, name in enumerate(n.input):
            have = cur.get(name)
            if not name or have not in (_FLOAT, _HALF):
                continue
            need = want(n, i)
            if have != need:
                key = (name, need)
                if key not in casts:
                    casts[key] = f"{name}__to_{'fp16' if need == _HALF else 'fp32'}"
                    nodes.append(helper.make_node("Cast", [name], [casts[key]], to=need, name=f"autocast/{casts[key]}"))
                n.input[i] = casts[key]
        mode = _FLOAT if n.op_type in keep else _HALF
        if n.op_type == "Cast":
            to = next(a for a in n.attribute if a.name == "to")
            if to.i == _FLOAT and mode == _HALF:
                to.i = _HALF
        elif n.op_type == "ConstantOfShape":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == _FLOAT and mode == _HALF:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
        for o in n.output:
            if dtype.get(o) == _FLOAT:
                cur[o] = mode
        nodes.append(n)

    for out in g.output:
        if cur.get(out.name) == _HALF:
            inner = f"{out.name}__fp16"
            for n in nodes:
                n.output[:] = [inner if o == out.name else o for o in n.output]
                n.input[:] = [inner if i == out.name else i for i in n.input]
            nodes.append(helper.make_node("Cast", [inner], [out.name], to=_FLOAT, name=f"autocast/{out.name}"))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
    except Exception as err:
        raise ExportError(f"FP16 conversion produced an invalid graph: {str(err).splitlines()[0]}") from err
    return m


def to_onnx_fp16(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: FP32 ``model.onnx`` -> ``model.fp16.onnx`` (FP32 I/O), checked in onnxruntime against torch.

    Raises:
        ParityError: max abs diff to torch above ``cfg.atol_fp16`` or a non-finite output.
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "FP16 ONNX conversion")
    onnx = require("onnx", extra="onnx")
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest
    from lle.export.onnx_export import load_reference, onnx_io, run_onnx

    src = Path(src)
    path = Path(out_dir) / "model.fp16.onnx"
    m = convert_to_fp16(onnx.load(str(src)))
    tmp = path.with_name(f".{path.name}.part")
    onnx.save(m, str(tmp))
    tmp.replace(path)
    ref = load_reference(src)
    parity = compare(run_onnx(path, ref["rand_x"]), ref["rand_y"], kind="atol", threshold=cfg.atol_fp16)
    src_m = read_manifest(src)
    write_manifest(path, format="onnx", precision="fp16", preset=src_m.get("preset"), io=onnx_io(path),
                   parity=parity, source={"onnx": src.name, "sha256": src_m.get("sha256", {}).get(src.name)},
                   note="autocast FP16 compute, FP32 graph inputs/outputs; input of a strongly typed TensorRT build")
    check_parity(parity, path)
    return path
