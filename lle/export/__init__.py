"""Export steps: one small module per target. Importing this package imports no runtime.

``TARGETS`` maps a target name to its chain of steps. Every step is ``fn(src, out_dir, cfg, calib) -> Path``: it
reads the previous artifact (the weights for the first step), writes its own artifact and a manifest JSON beside it,
checks the artifact against the PyTorch reference and raises :class:`~lle.errors.ParityError` on a miss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lle.errors import ConfigError
from lle.export.onnx_export import to_onnx
from lle.export.onnx_fp16 import to_onnx_fp16
from lle.export.openvino_ir import to_ov, to_ov_fp16, to_ov_int8
from lle.export.ort_quant import to_qdq
from lle.export.trt_engine import to_engine

if TYPE_CHECKING:
    from lle.export.calibration import CalibrationSet
    from lle.export.config import ExportConfig

__all__ = ["ArtifactResult", "ExportResult", "Step", "TARGETS", "export_model", "resolve_target"]

log = logging.getLogger(__name__)

Step = Callable[[Path, Path, "ExportConfig", "CalibrationSet | None"], Path]

TARGETS: dict[str, list[Step]] = {
    "onnx": [to_onnx],
    "onnx-fp16": [to_onnx, to_onnx_fp16],
    "onnx-int8": [to_onnx, to_qdq],
    "openvino": [to_onnx, to_ov],
    "openvino-fp16": [to_onnx, to_ov_fp16],
    "openvino-int8": [to_onnx, to_ov_int8],
    "trt-fp32": [to_onnx, to_engine],
    "trt-fp16": [to_onnx, to_onnx_fp16, to_engine],
    "trt-int8": [to_onnx, to_qdq, to_engine],
}

# (--format, --precision) -> target name. The CLI's two flags name a target; this table is the only mapping.
_BY_FORMAT: dict[tuple[str, str], str] = {
    ("onnx", "fp32"): "onnx",
    ("onnx", "fp16"): "onnx-fp16",
    ("onnx", "int8"): "onnx-int8",
    ("onnx-int8", "int8"): "onnx-int8",
    ("openvino", "fp32"): "openvino",
    ("openvino", "fp16"): "openvino-fp16",
    ("openvino", "int8"): "openvino-int8",
    ("tensorrt", "fp32"): "trt-fp32",
    ("tensorrt", "fp16"): "trt-fp16",
    ("tensorrt", "int8"): "trt-int8",
}


def resolve_target(fmt: str, precision: str) -> str:
    """The target name for a format and precision.

    Raises:
        ConfigError: the combination does not exist (the hint lists the valid ones).

    Example:
        >>> resolve_target("tensorrt", "int8")
        'trt-int8'
    """
    try:
        return _BY_FORMAT[(fmt, precision)]
    except KeyError:
        valid = ", ".join(f"{f}/{p}" for f, p in _BY_FORMAT)
        raise ConfigError(f"no export for format {fmt!r} at precision {precision!r}", hint=f"valid: {valid}") from None


@dataclass(frozen=True, slots=True)
class ArtifactResult:
    """One step's output: the artifact, its size on disk, its parity record and how long the step took."""

    step: str
    path: Path
    size_bytes: int
    seconds: float
    manifest: dict[str, Any]

    @property
    def parity(self) -> str:
        p = self.manifest.get("parity")
        if not p:
            return "-"
        if p["kind"] == "psnr":
            return f"PSNR {p['psnr_db']:.1f} dB (>= {p['threshold']:g})"
        return f"max abs {p['max_abs']:.1e} (<= {p['threshold']:g})"


@dataclass(frozen=True, slots=True)
class ExportResult:
    target: str
    artifacts: tuple[ArtifactResult, ...]

    @property
    def final(self) -> Path:
        return self.artifacts[-1].path


def export_model(
    weights: Path,
    target: str,
    out_dir: Path,
    cfg: ExportConfig,
    calib: CalibrationSet | None = None,
    *,
    progress: Callable[[float, int, str], None] | None = None,
) -> ExportResult:
    """Run every step of ``target`` on ``weights``, writing artifacts and manifests into ``out_dir``.

    ``progress(done, total, info)`` is called before each step (``info`` its name) and once at the end; long steps
    report their own work in between (:mod:`lle.export.progress`): ``done`` then counts the step as a fraction, and
    ``info`` says what it is doing (e.g. ``to_qdq: calibration 12/60``).

    Raises:
        ConfigError: unknown target (the hint lists the valid ones).
        ExportError / ParityError / MissingDependencyError: from the failing step.
    """
    from lle.config import dump_config
    from lle.export.manifest import read_manifest, update_manifest
    from lle.export.progress import reporting
    from lle.host import release_memory

    if target not in TARGETS:
        raise ConfigError(f"unknown export target {target!r}", hint=f"valid targets: {', '.join(TARGETS)}")
    steps = TARGETS[target]
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(weights)
    results = []
    try:
        for i, step in enumerate(steps):
            if progress:
                progress(i, len(steps), step.__name__)
            t0 = time.perf_counter()

            def inner(done: int, total: int, what: str, i: int = i, name: str = step.__name__) -> None:
                if progress:
                    progress(i + done / max(1, total), len(steps), f"{name}: {what} {done}/{total}")

            with reporting(inner):
                src = step(src, out_dir, cfg, calib)
            release_memory()  # the next step (calibration, NNCF) peaks on its own, not on this one's leftovers
            dt = time.perf_counter() - t0
            # What the artifact was built for: the deployment profile and its input sizes (TensorRT profile,
            # calibration).
            update_manifest(src, deployment={"profile": cfg.name, "target": target, "min_hw": list(cfg.input.min_hw),
                                             "opt_hw": list(cfg.input.opt_hw), "max_hw": list(cfg.input.max_hw)})
            manifest = read_manifest(src)
            log.info("%s: %s in %.1f s", step.__name__, src.name, dt)
            results.append(ArtifactResult(step.__name__, src, int(manifest.get("size_bytes", 0)), dt, manifest))
    except BaseException:
        # Completed steps keep their (checked) artifacts; a folder this call made and nothing filled goes away.
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    dump_config(cfg, out_dir / "export.resolved.yaml")  # only for an export that finished
    if progress:
        progress(len(steps), len(steps), "done")
    return ExportResult(target, tuple(results))
