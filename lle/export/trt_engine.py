"""ONNX -> TensorRT ``.plan`` (TensorRT 10 Python API), with sidecar JSON, timing cache and a ``trtexec`` line.

Precision lives in the ONNX graph: the FP16 engine builds from the autocast FP16 ONNX and the INT8 engine from the
Q/DQ ONNX, both as a strongly typed network (TensorRT 11 removed the FP16/INT8 builder flags and the implicit INT8
calibrators). For TensorRT 10.x only (JetPack 6 ships 10.3), ``tensorrt.legacy_precision_flags`` builds from the
FP32 ONNX with precision flags, and ``tensorrt.legacy_calibrator`` adds the deprecated entropy calibrator, which DLA
INT8 still needs. After every build the engine runs on the reference inputs: NaN/Inf (the classic FP16 failure of
image models) or a PSNR below ``min_psnr`` fails the step.

TensorRT is imported lazily; this module imports and type-checks without it (``mypy`` against tensorrt-stubs).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle._lazy import require
from lle.errors import BackendError, ConfigError, ExportError
from lle.export.trt_meta import (
    EngineSpec,
    EnvironmentSpec,
    Shape,
    legacy_path_allowed,
    read_sidecar,
    shape_profiles,
    trtexec_command,
    validate_sidecar,
)

if TYPE_CHECKING:
    import tensorrt as trt

    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["build_engine", "current_environment", "load_checked_engine", "run_engine", "to_engine"]

log = logging.getLogger(__name__)


def _require_trt() -> None:
    require("tensorrt", extra="tensorrt")


def current_environment() -> EnvironmentSpec:
    """TensorRT version, CUDA runtime version and GPU 0 of this machine (via cuda-python, else torch)."""
    _require_trt()
    import tensorrt as trt

    cuda, gpu, cc = "unknown", "unknown", "unknown"
    try:
        from cuda.bindings import runtime as cudart

        _, ver = cudart.cudaRuntimeGetVersion()
        err, props = cudart.cudaGetDeviceProperties(0)
        cuda = f"{ver // 1000}.{ver % 1000 // 10}"
        if int(err) == 0:
            gpu = props.name.decode(errors="replace").rstrip("\x00")
            cc = f"{props.major}.{props.minor}"
    except ImportError:
        try:
            import torch

            if torch.cuda.is_available():
                cuda = str(torch.version.cuda)
                gpu = torch.cuda.get_device_name(0)
                cc = "{}.{}".format(*torch.cuda.get_device_capability(0))
        except ImportError:
            log.warning("neither cuda-python nor torch is installed: the sidecar cannot record the GPU")
    return EnvironmentSpec(tensorrt=trt.__version__, cuda=cuda, gpu=gpu, compute_capability=cc)


def _entropy_calibrator(calib: CalibrationSet, feed: Any, cache: Path) -> trt.IInt8EntropyCalibrator2:
    """Legacy implicit INT8 calibrator (TensorRT 10.x only), built lazily as Polygraphy does. Cache keyed by sha."""
    import tensorrt as trt

    buffers = _DeviceBuffers()

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._it = iter(calib)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int]:
            x = next(self._it, None)
            if x is None:
                return []
            feeds = feed(x)
            return [buffers.upload(n, feeds[n]) for n in names]

        def read_calibration_cache(self) -> bytes:
            return cache.read_bytes() if cache.is_file() else b""

        def write_calibration_cache(self, data: Any) -> None:
            cache.write_bytes(bytes(data))

    return _Calibrator()


class _DeviceBuffers:
    """Device memory per tensor name through cuda-python's runtime API (freed on :meth:`free`)."""

    def __init__(self) -> None:
        self._cudart = require("cuda.bindings.runtime", extra="tensorrt")
        self._ptrs: dict[str, tuple[int, int]] = {}

    def _check(self, res: Any) -> Any:
        err, *rest = res if isinstance(res, tuple) else (res,)
        if int(err) != 0:
            raise BackendError(f"CUDA runtime call failed with error {int(err)}")
        return rest[0] if len(rest) == 1 else rest

    def alloc(self, name: str, nbytes: int) -> int:
        ptr, size = self._ptrs.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self._check(self._cudart.cudaFree(ptr))
            ptr, size = int(self._check(self._cudart.cudaMalloc(nbytes))), nbytes
            self._ptrs[name] = (ptr, size)
        return ptr

    def upload(self, name: str, arr: np.ndarray) -> int:
        arr = np.ascontiguousarray(arr)
        ptr = self.alloc(name, arr.nbytes)
        kind = self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._cudart.cudaMemcpy(ptr, arr.ctypes.data, arr.nbytes, kind))
        return ptr

    def download(self, name: str, out: np.ndarray) -> np.ndarray:
        kind = self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._cudart.cudaMemcpy(out.ctypes.data, self._ptrs[name][0], out.nbytes, kind))
        return out

    def free(self) -> None:
        for ptr, _ in self._ptrs.values():
            self._cudart.cudaFree(ptr)
        self._ptrs.clear()


def build_engine(
    onnx_path: Path,
    plan: Path,
    profiles: dict[str, tuple[Shape, Shape, Shape]],
    cfg: ExportConfig,
    *,
    precision: str,
    calib: CalibrationSet | None = None,
) -> EngineSpec:
    """Build ``plan`` from ``onnx_path`` with one optimization profile; returns the sidecar spec.

    Raises:
        ConfigError: a legacy option on TensorRT 11+, or DLA requested on a GPU without DLA cores.
        ExportError: the parser or the builder failed (the parser's errors are in the message).
    """
    _require_trt()
    import tensorrt as trt

    from lle.export.manifest import sha256_file

    t = cfg.tensorrt
    legacy = t.legacy_precision_flags or t.legacy_calibrator
    if legacy and not legacy_path_allowed(trt.__version__):
        raise ConfigError(f"tensorrt.legacy_* options need TensorRT 10.x, this is {trt.__version__}",
                          hint="TensorRT 11 builds precision from the ONNX graph: use the Q/DQ or FP16 ONNX")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if legacy else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, t.workspace_mib << 20)
    config.builder_optimization_level = t.opt_level
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 is on by default and would fail the 1e-4 FP32 check
    profile = builder.create_optimization_profile()
    for name, (mn, opt, mx) in profiles.items():
        profile.set_shape(name, trt.Dims(list(mn)), trt.Dims(list(opt)), trt.Dims(list(mx)))
    config.add_optimization_profile(profile)
    cache_path = Path(t.timing_cache) if t.timing_cache else plan.parent / "timing.cache"
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if t.dla_core >= 0:
        if builder.num_DLA_cores <= t.dla_core:
            raise ConfigError(f"DLA core {t.dla_core} requested, this device has {builder.num_DLA_cores} DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = t.dla_core
        if t.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    sha = sha256_file(onnx_path)
    if legacy:
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            if t.legacy_calibrator:
                if calib is None:
                    raise ExportError("the legacy INT8 calibrator needs calibration images", hint="pass --calib DIR")
                from lle.export.onnx_export import graph_feed

                calib_cache = plan.parent / f"calib-{sha[:16]}.cache"
                config.int8_calibrator = _entropy_calibrator(calib, graph_feed(Path(onnx_path)), calib_cache)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {Path(onnx_path).name} (see the log above)")
    tmp = plan.with_name(f".{plan.name}.part")
    tmp.write_bytes(memoryview(serialized))
    tmp.replace(plan)
    cache_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    log.info("built %s in %.0f s", plan.name, time.perf_counter() - t0)
    return EngineSpec(
        env=current_environment(), precision=precision, strongly_typed=not legacy, profiles=profiles,
        source_onnx=Path(onnx_path).name, source_sha256=sha, dla_core=t.dla_core,
        builder={"opt_level": t.opt_level, "workspace_mib": t.workspace_mib, "timing_cache": str(cache_path),
                 "gpu_fallback": t.gpu_fallback, "legacy_precision_flags": t.legacy_precision_flags,
                 "legacy_calibrator": t.legacy_calibrator},
    )  # fmt: skip


def load_checked_engine(plan: Path) -> tuple[trt.ICudaEngine, list[str]]:
    """Deserialise ``plan`` after checking its sidecar against this machine. Returns (engine, warnings).

    Raises:
        BackendError: sidecar missing or mismatched (see :func:`validate_sidecar`), or deserialisation failed.
    """
    _require_trt()
    import tensorrt as trt

    warnings = validate_sidecar(read_sidecar(plan), current_environment(), plan_name=Path(plan).name)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(plan).read_bytes())
    if engine is None:
        raise BackendError(f"TensorRT could not deserialise {Path(plan).name}")
    return engine, warnings


def run_engine(plan: Path, feeds: list[dict[str, np.ndarray]], output: str = "output") -> list[np.ndarray]:
    """Run ``plan`` on each input dict synchronously; returns ``output`` (float32) per feed."""
    import tensorrt as trt

    engine, _ = load_checked_engine(plan)
    ctx = engine.create_execution_context()
    bufs = _DeviceBuffers()
    outs: list[np.ndarray] = []
    try:
        for feed in feeds:
            for name, arr in feed.items():
                ctx.set_input_shape(name, tuple(arr.shape))
                dtype = trt.nptype(engine.get_tensor_dtype(name))
                ctx.set_tensor_address(name, bufs.upload(name, arr.astype(dtype)))
            results: dict[str, np.ndarray] = {}
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                    dims = ctx.get_tensor_shape(name)
                    shape = tuple(dims[j] for j in range(len(dims)))
                    host = np.empty(shape, trt.nptype(engine.get_tensor_dtype(name)))
                    ctx.set_tensor_address(name, bufs.alloc(name, host.nbytes))
                    results[name] = host
            if not ctx.execute_async_v3(0):
                raise BackendError(f"TensorRT execution of {Path(plan).name} failed")
            outs.append(bufs.download(output, results[output]).astype(np.float32))
    finally:
        bufs.free()
    return outs


def to_engine(src: Path, out_dir: Path, cfg: ExportConfig, calib: CalibrationSet | None) -> Path:
    """Step: ONNX (FP32, autocast FP16 or Q/DQ INT8) -> ``model.<precision>.plan`` + sidecar + trtexec line.

    Raises:
        MissingDependencyError: TensorRT is not installed.
        ExportError: parse/build failed.
        ParityError: NaN/Inf in the engine's output, or PSNR vs the torch FP32 output below ``cfg.min_psnr``
            (INT8), or max abs diff above the FP16/FP32 tolerance.
    """
    from lle.export.onnx_export import require_float_graph

    require_float_graph(src, "the TensorRT engine build")
    _require_trt()
    from lle.export.manifest import check_parity, compare, read_manifest, write_manifest
    from lle.export.onnx_export import graph_feed, load_reference, onnx_io

    src = Path(src)
    precision = cfg.precision
    src_m = read_manifest(src)
    fp32_onnx = src.parent / "model.onnx"
    ref = load_reference(fp32_onnx)
    multiple = int(read_manifest(fp32_onnx).get("size_multiple", 16))
    profiles = shape_profiles(onnx_io(src), min_hw=cfg.input.min_hw, opt_hw=cfg.input.opt_hw,
                              max_hw=cfg.input.max_hw, batch=cfg.input.batch, multiple=multiple)
    legacy = cfg.tensorrt.legacy_precision_flags or cfg.tensorrt.legacy_calibrator
    build_src = fp32_onnx if legacy else src
    plan = Path(out_dir) / f"model.{precision}.plan"
    spec = build_engine(build_src, plan, profiles, cfg, precision=precision, calib=calib)
    cmd = trtexec_command(build_src, plan, profiles, strongly_typed=spec.strongly_typed, precision=precision,
                          workspace_mib=cfg.tensorrt.workspace_mib, opt_level=cfg.tensorrt.opt_level,
                          timing_cache=Path(spec.builder["timing_cache"]), dla_core=cfg.tensorrt.dla_core,
                          gpu_fallback=cfg.tensorrt.gpu_fallback,
                          calib_cache=plan.parent / f"calib-{spec.source_sha256[:16]}.cache"
                          if cfg.tensorrt.legacy_calibrator else None)
    plan.with_suffix(".trtexec.sh").write_text(f"#!/bin/sh\n# Builds {plan.name} on the target device.\n{cmd}\n")
    feed = graph_feed(src)
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    in_profile = [x for x in xs if _fits(profiles, x.shape)]
    if not in_profile:
        raise ExportError(f"no reference image fits the engine profile {profiles}",
                          hint="set calibration.hw inside input.min_hw..max_hw")
    ys = [y for x, y in zip(xs, ys, strict=True) if _fits(profiles, x.shape)]
    # compare() also fails on NaN/Inf, the classic failure of FP16 image models; its PSNR is recorded either way.
    kind, bound = ("psnr", cfg.min_psnr) if precision == "int8" else (
        "atol", cfg.atol_fp16 if precision == "fp16" else cfg.atol_fp32)
    parity = compare(run_engine(plan, [feed(x) for x in in_profile]), ys, kind=kind, threshold=bound)
    write_manifest(plan, format="tensorrt", precision=precision, preset=src_m.get("preset"), size_multiple=multiple,
                   engine=spec.to_dict(), parity=parity, trtexec=cmd,
                   parity_on="held-out calibration images" if ref["hold_x"] else "random")
    check_parity(parity, plan)
    return plan


def _fits(profiles: dict[str, tuple[Shape, Shape, Shape]], shape: tuple[int, ...]) -> bool:
    from lle.export.onnx_export import INPUT_NAME

    mn, _, mx = profiles[INPUT_NAME]
    return all(a <= s <= b for a, s, b in zip(mn, shape, mx, strict=True))
