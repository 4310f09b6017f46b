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

from lle._atomic import atomic_write_bytes
from lle._lazy import require
from lle.errors import BackendError, ConfigError, ExportError, MissingDependencyError
from lle.export.runners import run_artifact, run_engine
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
        from lle._cuda import Cuda

        rt = Cuda()
        cuda = rt.runtime_version()
        try:
            gpu, cc = rt.device(0)
        except BackendError:
            pass
    except MissingDependencyError:
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

    from lle._cuda import DeviceBuffers

    buffers = DeviceBuffers()

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
    atomic_write_bytes(plan, bytes(memoryview(serialized)))
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
    from lle.export.manifest import check_parity, compare, read_manifest, update_manifest, write_manifest
    from lle.export.onnx_export import load_reference, onnx_io

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
    xs, ys = (ref["hold_x"], ref["hold_y"]) if ref["hold_x"] else (ref["rand_x"], ref["rand_y"])
    in_profile = [x for x in xs if _fits(profiles, x.shape)]
    if not in_profile:
        raise ExportError(f"no reference image fits the engine profile {profiles}",
                          hint="set calibration.hw inside input.min_hw..max_hw")
    ys = [y for x, y in zip(xs, ys, strict=True) if _fits(profiles, x.shape)]
    # compare() also fails on NaN/Inf, the classic failure of FP16 image models; its PSNR is recorded either way.
    kind, bound = ("psnr", cfg.min_psnr) if precision == "int8" else (
        "atol", cfg.atol_fp16 if precision == "fp16" else cfg.atol_fp32)
    # The manifest comes first: the backend that runs the check reads the engine's size multiple from it.
    write_manifest(plan, format="tensorrt", precision=precision, preset=src_m.get("preset"), size_multiple=multiple,
                   engine=spec.to_dict(), trtexec=cmd, exposure_cap=src_m.get("exposure_cap"))
    outs = run_artifact("tensorrt", plan, in_profile, device="cuda", precision=precision)
    parity = compare(outs, ys, kind=kind, threshold=bound)
    update_manifest(plan, parity=parity, parity_on="held-out calibration images" if ref["hold_x"] else "random")
    check_parity(parity, plan)
    return plan


def _fits(profiles: dict[str, tuple[Shape, Shape, Shape]], shape: tuple[int, ...]) -> bool:
    from lle.export.onnx_export import INPUT_NAME

    mn, _, mx = profiles[INPUT_NAME]
    return all(a <= s <= b for a, s, b in zip(mn, shape, mx, strict=True))
