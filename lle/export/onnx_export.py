"""PyTorch preset -> ONNX with dynamic batch/H/W, checked, shape-inferred, simplified, with lle metadata."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._atomic import atomic_path
from lle._lazy import require
from lle.backends.base import ALPHA as ALPHA_NAME
from lle.backends.base import INPUT as INPUT_NAME
from lle.backends.base import OUTPUT as OUTPUT_NAME
from lle.backends.base import STATE as STATE_NAME
from lle.backends.base import STATE_OUT as STATE_OUT_NAME
from lle.errors import ExportError, InputError
from lle.export.runners import run_onnx

if TYPE_CHECKING:
    from torch import nn

    from lle.export.calibration import CalibrationSet, Feed
    from lle.export.config import ExportConfig
    from lle.models.checkpoint import ModelCard

__all__ = [
    "ALPHA_NAME", "DEFAULT_OPSET", "INPUT_NAME", "IO_KINDS", "OUTPUT_NAME", "STATE_NAME", "STATE_OUT_NAME",
    "export_onnx", "graph_feed", "load_reference", "onnx_io", "parity_atol", "read_onnx_metadata", "reference_path",
    "require_float_graph", "run_onnx", "to_onnx",
]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
IO_KINDS = ("float32", "uint8", "i420")
"""``--io`` choices: float32 NCHW RGB tensors, uint8 NHWC BGR frames, or uint8 I420 video frames (realtime
preset only; :mod:`lle.models.frames`)."""


def export_onnx(
    model: nn.Module,
    path: Path,
    *,
    card: ModelCard | None = None,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    sample_hw: tuple[int, int] = (64, 96),
    io: str = "float32",
) -> Path:
    """Export ``model`` to ``path`` with input ``input`` / output ``output``, N/H/W dynamic.

    ``io="float32"``: (N, 3, H, W) float32 RGB in [0, 1], H and W multiples of the model's size multiple.
    ``io="uint8"``: (N, H, W, 3) uint8 BGR frames of any size, as decoders give them (see :mod:`lle.models.frames`);
    ``io="i420"`` (realtime preset): (N, H*3/2, W) uint8 I420 frames of even H x W, as PyAV decodes ``yuv420p``;
    the metadata ``lle.io`` says which, and ``lle.size_multiple`` is 1 (the graph pads itself) or 2 (I420).

    The realtime preset is exported in its video form (:class:`TemporalRealtime`): extra input ``state``
    (N, C, L, L) and ``alpha`` (1,), extra output ``state_out``. Feeding zeros gives the single-image result.

    The graph is validated with ``onnx.checker`` and shape inference, simplified with onnxslim when ``simplify``,
    and carries metadata props: ``lle.preset``, ``lle.size_multiple``, ``lle.normalisation``, ``lle.version`` and
    ``lle.model_card`` (JSON). The file is written atomically.

    Raises:
        MissingDependencyError: torch/onnx not installed.
        ExportError: tracing or validation failed.
    """
    torch = require("torch", extra="onnx")
    onnx = require("onnx", extra="onnx")
    from lle.models.frames import frame_graph
    from lle.models.realtime import RealtimeUNet, TemporalRealtime

    if io not in IO_KINDS:
        raise ExportError(f"unknown graph I/O {io!r}", hint=f"valid: {', '.join(IO_KINDS)}")
    model = model.eval().float().to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    mult = int(getattr(model, "size_multiple", 16))
    realtime = isinstance(model, RealtimeUNet)
    gen = torch.Generator().manual_seed(0)
    if io == "i420" and not realtime:
        raise ExportError("--io i420 is for the realtime preset's video graph",
                          hint="use --io uint8 or float32 for this model")
    if io in ("uint8", "i420"):
        shape = (1, *sample_hw, 3) if io == "uint8" else (1, sample_hw[0] // 2 * 3, sample_hw[1] // 2 * 2)
        x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
        dyn = {0: "batch", 1: "height", 2: "width"}
        model, mult = frame_graph(model, io).eval(), (1 if io == "uint8" else 2)
    else:
        h, w = (-(-sample_hw[0] // mult) * mult, -(-sample_hw[1] // mult) * mult)
        x = torch.rand(1, 3, h, w, generator=gen)
        dyn = {0: "batch", 2: "height", 3: "width"}
        if isinstance(model, RealtimeUNet):
            # Video graphs carry the coefficient state, so every runtime can smooth it over time.
            model = TemporalRealtime(model).eval()
    args: tuple = (x,)
    names_in, names_out, axes = [INPUT_NAME], [OUTPUT_NAME], {INPUT_NAME: dyn, OUTPUT_NAME: dyn}
    if realtime:
        args = (x, torch.zeros(1, model.coeff_channels, model.lowres, model.lowres), torch.zeros(1))
        names_in += [STATE_NAME, ALPHA_NAME]
        names_out += [STATE_OUT_NAME]
        axes.update({STATE_NAME: {0: "batch"}, STATE_OUT_NAME: {0: "batch"}})
    path = Path(path)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, args, str(tmp), dynamo=False, opset_version=opset,
                input_names=names_in, output_names=names_out, dynamic_axes=axes,
            )  # fmt: skip
            _finish_onnx(onnx, tmp, card, model, mult, io, simplify=simplify)
    except Exception as err:
        if isinstance(err, ExportError):
            raise
        raise ExportError(f"ONNX export of {type(model).__name__} failed: {str(err).splitlines()[0]}") from err
    log.info("wrote %s", path)
    return path


def _finish_onnx(onnx: Any, tmp: Path, card: ModelCard | None, model: nn.Module, mult: int, io: str, *,
                 simplify: bool) -> None:
    """Simplify, shape-infer, check and label the freshly exported graph at ``tmp`` (in place)."""
    from lle import __version__
    from lle.backends.base import FLOAT_IO, FRAME_IO, I420_IO

    m = onnx.load(str(tmp))
    if simplify:
        onnxslim = require("onnxslim", extra="onnx")
        m = onnxslim.slim(m)
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m, full_check=True)
    meta = {
        "lle.version": __version__,
        "lle.size_multiple": str(mult),
        "lle.preset": card.preset if card else type(model).__name__,
        "lle.io": {"uint8": FRAME_IO, "i420": I420_IO}.get(io, FLOAT_IO),
        "lle.normalisation": {
            "uint8": "BGR NHWC uint8 frames in and out; cast, scale, pad, round and clip inside the graph",
            "i420": "I420 (N, H*3/2, W) uint8 frames in and out, BT.601 limited range, H and W even",
        }.get(io, "RGB NCHW float32 in [0, 1]; no mean/std; clip output to [0, 1]"),
    }
    if card is not None:
        meta["lle.model_card"] = card.to_json()
        if card.arch.get("exposure_cap"):
            meta["lle.exposure_cap"] = ",".join(str(float(v)) for v in card.arch["exposure_cap"])
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    m.producer_name, m.producer_version = "lle", __version__
    onnx.save(m, str(tmp))


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The ``lle.*`` metadata props of an ONNX file (reads only the model proto, not a runtime)."""
    onnx = require("onnx", extra="onnx")
    m = onnx.load(str(path), load_external_data=False)
    out = {p.key: p.value for p in m.metadata_props}
    if "lle.model_card" in out:
        json.loads(out["lle.model_card"])
    return out


def graph_feed(path: Path) -> Feed:
    """A function (1|N, 3, H, W) image -> input dict for the ONNX graph at ``path``.

    Extra inputs of the realtime video graph get zeros (``state`` (N, C, L, L), ``alpha`` (1,)): the single-image
    result, which is what parity and calibration are measured on.
    """
    onnx = require("onnx", extra="onnx")
    m = onnx.load(str(path), load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    extra: dict[str, list[int | None]] = {}
    in_dtype: type = np.float32
    for inp in m.graph.input:
        if inp.name == INPUT_NAME and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
            in_dtype = np.uint8
        if inp.name in init or inp.name == INPUT_NAME:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        extra[inp.name] = dims

    def feed(x: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {INPUT_NAME: np.ascontiguousarray(x, dtype=in_dtype)}
        for name, dims in extra.items():
            shape = [x.shape[0] if (d is None and i == 0) else (d or 1) for i, d in enumerate(dims)]
            out[name] = np.zeros(shape, np.float32)
        return out

    return feed


def reference_path(onnx_path: Path) -> Path:
    """Where :func:`to_onnx` keeps the torch reference inputs/outputs: ``model.onnx`` -> ``model.reference.npz``."""
    return Path(onnx_path).with_suffix(".reference.npz")


def _rand_inputs(cfg: ExportConfig, mult: int) -> list[np.ndarray]:
    g = np.random.default_rng(0)
    sizes = [(-(-h // mult) * mult, -(-w // mult) * mult) for h, w in cfg.parity_hw]
    return [g.random((1, 3, h, w), dtype=np.float32) for h, w in sizes]


def require_float_graph(src: Path, step: str) -> None:
    """Raise when ``src`` is a uint8 frame graph.

    ``step`` (INT8 calibration, FP16 conversion, TensorRT profiles) works on float32 NCHW graphs only.

    Raises:
        ExportError: naming the graph and the fix.
    """
    from lle.export.manifest import read_manifest

    if read_manifest(src).get("graph_io", "float32") != "float32":
        raise ExportError(f"{step} needs a float32 NCHW graph, but {Path(src).name} takes uint8 frames",
                          hint="export the ONNX with --io float32")


def _rand_frames(cfg: ExportConfig, io: str = "uint8") -> list[np.ndarray]:
    """Seeded dark-weighted uint8 frames at ``cfg.parity_hw``.

    BGR with odd sizes kept (uint8 graphs take any size), or I420 frames of those sizes rounded up to even.
    """
    g = np.random.default_rng(0)
    if io == "i420":
        sizes = [(h + h % 2, w + w % 2) for h, w in cfg.parity_hw]
        return [(255.0 * g.random((1, h * 3 // 2, w)) ** 2).astype(np.uint8) for h, w in sizes]
    sizes = [(h + 1, w + 3) for h, w in cfg.parity_hw]
    return [(255.0 * g.random((1, h, w, 3)) ** 2).astype(np.uint8) for h, w in sizes]


def _first(y: Any) -> Any:
    return y[0] if isinstance(y, tuple) else y


def parity_atol(io: str, atol_float: float, *, fp16: bool = False) -> float:
    """Max abs difference allowed against torch.

    ``atol_float`` for float graphs; for uint8 frames 1 level (rounding), 4 levels with FP16 weights.
    """
    if io in ("uint8", "i420"):
        return 4.0 if fp16 else 1.0
    return atol_float


def load_reference(onnx_path: Path) -> dict[str, list[np.ndarray]]:
    """The reference set of an ONNX export: ``{"rand_x", "rand_y", "hold_x", "hold_y"}`` lists of arrays.

    Raises:
        InputError: the reference file is missing (the ONNX was not made by :func:`to_onnx`).
    """
    path = reference_path(onnx_path)
    if not path.is_file():
        raise InputError(f"no torch reference {path.name} beside {Path(onnx_path).name}",
                         hint="export the ONNX with `lle export` so later steps can check parity")
    with np.load(path) as z:
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("rand_x", "rand_y", "hold_x", "hold_y")}
        for key in sorted(z.files, key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1]))):
            out[key.rsplit("_", 1)[0]].append(z[key])
    return out


def onnx_io(path: Path) -> dict[str, Any]:
    """Inputs/outputs of an ONNX graph as ``{"inputs": {name: dims}, "outputs": {...}}`` (symbolic dims as str)."""
    onnx = require("onnx", extra="onnx")
    m = onnx.load(str(path), load_external_data=False)

    def dims(v: Any) -> list[int | str]:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]

    init = {i.name for i in m.graph.initializer}
    return {
        "inputs": {v.name: dims(v) for v in m.graph.input if v.name not in init},
        "outputs": {v.name: dims(v) for v in m.graph.output},
        "opset": max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0),
    }


def to_onnx(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: weights (.safetensors + card) -> ``model.onnx`` checked against torch, plus manifest and reference.

    The reference file ``model.reference.npz`` holds seeded random inputs at ``cfg.parity_hw`` and, when a
    calibration set is given, its held-out images, each with the torch output; later steps check against it.

    Raises:
        InputError: unreadable weights.
        ExportError: export or validation failed.
        ParityError: onnxruntime differs from torch by more than ``cfg.atol_fp32``.
    """
    torch = require("torch", extra="onnx")
    from lle.export.config import resolve_io
    from lle.export.manifest import check_parity, compare, write_manifest
    from lle.models.checkpoint import load_model
    from lle.models.frames import frame_graph

    model, card = load_model(Path(src))
    io = resolve_io(cfg, card.preset)
    path = export_onnx(model, Path(out_dir) / "model.onnx", card=card, opset=cfg.opset, simplify=cfg.simplify, io=io)
    mult = card.size_multiple if io == "float32" else 1
    rand = _rand_inputs(cfg, mult) if io == "float32" else _rand_frames(cfg, io)
    hold = calib.holdout_arrays() if calib is not None and io == "float32" else []
    graph = model if io == "float32" else frame_graph(model, io).eval()
    with torch.no_grad():
        ref = {k: [_first(graph(torch.from_numpy(x))).numpy() for x in xs]
               for k, xs in (("rand", rand), ("hold", hold))}
    arrays = {f"rand_x_{i}": x for i, x in enumerate(rand)} | {f"rand_y_{i}": y for i, y in enumerate(ref["rand"])}
    arrays |= {f"hold_x_{i}": x for i, x in enumerate(hold)} | {f"hold_y_{i}": y for i, y in enumerate(ref["hold"])}
    np.savez_compressed(reference_path(path), **arrays)
    parity = compare(run_onnx(path, rand), ref["rand"], kind="atol", threshold=parity_atol(io, cfg.atol_fp32))
    write_manifest(path, format="onnx", precision="fp32", preset=card.preset, size_multiple=mult, graph_io=io,
                   io=onnx_io(path), parity=parity, parity_inputs=[list(x.shape) for x in rand],
                   source={"weights": Path(src).name, "sha256": _sha(Path(src))},
                   exposure_cap=card.arch.get("exposure_cap"))
    check_parity(parity, path)
    return path


def _sha(path: Path) -> str:
    from lle.export.manifest import sha256_file

    return sha256_file(path)
