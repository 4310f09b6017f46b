"""Find or make the artifact each (backend, precision) combination runs.

Order: an ``--artifacts`` folder written by ``lle export`` (its manifest JSONs, else file names), then an export
on the fly into a cache folder through the export library. A combination with no way to get an artifact raises
:class:`ExportError` naming why; the bench turns that into a failed row, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lle.errors import ExportError, LLEError

if TYPE_CHECKING:
    from lle.export.config import ExportConfig

__all__ = [
    "EXPORT_FORMATS", "KNOWN_PRECISIONS", "ArtifactSpec", "ExportSettings", "bench_export_config", "export_format",
    "find_artifact",
    "resolve_artifact",
]  # fmt: skip

log = logging.getLogger(__name__)

KNOWN_PRECISIONS = ("fp32", "fp16", "bf16", "int8")

# backend -> export format of lle.export (``lle export --format``); the precision carries over unchanged.
EXPORT_FORMATS: dict[str, str] = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}
_INT8_FORMAT = {"onnxruntime": "onnx-int8"}
_INT8_TAGS = ("int8", "qdq", "quant")


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    """The file a combination loads and where it came from (``weights`` | ``artifacts`` | ``exported``)."""

    path: Path
    source: str

    @property
    def size_mb(self) -> float:
        """Size on disk in MB, including OpenVINO's ``.bin`` beside an ``.xml``."""
        files = [self.path, self.path.with_suffix(".bin")] if self.path.suffix == ".xml" else [self.path]
        return sum(f.stat().st_size for f in files if f.is_file()) / 1e6


def _precision_of_name(path: Path) -> str:
    name = path.name.lower()
    if any(t in name for t in _INT8_TAGS):
        return "int8"
    for p in ("fp16", "bf16"):
        if p in name:
            return p
    return "fp32"


def export_format(backend: str, precision: str) -> str | None:
    """The ``lle export`` format that feeds ``backend`` at ``precision`` (None: the backend has no export).

    Example:
        >>> export_format("onnxruntime", "int8"), export_format("openvino", "fp16")
        ('onnx-int8', 'openvino')
    """
    if precision == "int8" and backend in _INT8_FORMAT:
        return _INT8_FORMAT[backend]
    return EXPORT_FORMATS.get(backend)


_MANIFEST_FORMATS = {"onnxruntime": ("onnx", "onnx-int8"), "openvino": ("openvino",), "tensorrt": ("tensorrt",)}


def _from_manifests(folder: Path, backend: str, precision: str) -> Path | None:
    formats = _MANIFEST_FORMATS.get(backend, ())
    for mf in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(mf.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "artifact" not in data:
            continue
        if data.get("format") in formats and data.get("precision") == precision:
            path = Path(data["artifact"])
            path = path if path.is_absolute() else mf.parent / path
            if path.is_file():
                return path
    return None


def find_artifact(folder: Path, backend: str, precision: str) -> Path | None:
    """The artifact for ``backend``/``precision`` in an ``lle export`` folder, or None.

    A manifest JSON beside the artifact (``artifact``, ``format``, ``precision`` keys) says what it is; only a file
    without one is judged by its suffix (the ones its backend runs, :func:`lle.backends.registry.backend_suffixes`)
    plus a precision tag in the name (``int8``/``qdq`` -> int8, ``fp16``, else fp32). OpenVINO fp16/bf16 run an
    fp32 IR with a precision hint when no fp16 IR exists.
    """
    from lle.backends.registry import backend_suffixes
    from lle.export.manifest import manifest_path

    suffixes = backend_suffixes(backend) if backend in _MANIFEST_FORMATS else ()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                   and not manifest_path(p).is_file())  # fmt: skip
    for want in (precision, "fp32") if backend == "openvino" and precision in {"fp16", "bf16"} else (precision,):
        found = _from_manifests(folder, backend, want)
        if found is not None:
            return found
        for suf in suffixes:  # the backend's native format first (.xml before .onnx for OpenVINO)
            hits = [p for p in files if p.suffix.lower() == suf and _precision_of_name(p) == want]
            if hits:
                return hits[0]
    return None


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """How the bench exports a missing artifact. ``calib``: calibration images (required for INT8).

    The export's own parity gates are relaxed (INT8 PSNR >= 0, FP16 atol 1e9) so that an inaccurate artifact is still
    measured and shown as a failed-accuracy row; FP32 keeps its 1e-4 gate (a miss there is a bug, not a trade-off).
    """

    calib: Path | None = None
    calib_n: int = 32
    calib_hw: tuple[int, int] = (360, 640)


def bench_export_config(target: str, fmt: str, precision: str, settings: ExportSettings) -> ExportConfig:
    """The export config of an on-the-fly bench artifact: accuracy gates off, INT8 made as a real export makes it.

    The INT8/FP16 gates are relaxed so that an inaccurate artifact is still measured (and shown as failing the
    bench's own PSNR check) instead of disappearing; the mixed-precision search keeps the target a default export
    aims for, since its target is counted from ``min_psnr``.
    """
    from lle.export.config import ExportConfig, with_overrides

    default = ExportConfig()
    return with_overrides(ExportConfig(name=f"bench-{target}", format=fmt, precision=precision), min_psnr=0.0,
                          atol_fp16=1e9, calibration__n=settings.calib_n, calibration__hw=settings.calib_hw,
                          calibration__margin_db=default.min_psnr + default.calibration.margin_db)  # fmt: skip


def _export(weights: Path, backend: str, precision: str, cache: Path, settings: ExportSettings) -> Path:
    fmt = export_format(backend, precision)
    if fmt is None:
        raise ExportError(f"no export format feeds backend {backend!r}", hint=f"formats: {', '.join(EXPORT_FORMATS)}")
    from lle.export import export_model, resolve_target

    # OpenVINO bf16 runs the fp32 IR with a bf16 inference-precision hint (set by the backend at compile time).
    target = resolve_target("onnx" if fmt == "onnx-int8" else fmt, "fp32" if (fmt, precision) == ("openvino", "bf16")
                            else precision)  # fmt: skip
    out = cache / target
    done = out / ".done"
    if done.is_file() and (out / done.read_text().strip()).is_file():
        return out / done.read_text().strip()
    cfg = bench_export_config(target, fmt, "fp32" if precision == "bf16" else precision, settings)
    calib = None
    if precision == "int8":
        if settings.calib is None:
            raise ExportError(f"{target} needs calibration images", hint="pass --calib calibration_data/images")
        from lle.export.calibration import CalibrationSet
        from lle.models.checkpoint import load_card

        c = cfg.calibration
        mult = load_card(weights).size_multiple
        calib = CalibrationSet.from_dir(settings.calib, n=c.n, hw=cfg.calib_hw, multiple=mult, seed=c.seed,
                                        holdout=c.holdout)  # fmt: skip
    final = export_model(weights, target, out, cfg, calib).final
    done.write_text(final.relative_to(out).as_posix())
    return final


def resolve_artifact(
    weights: Path | None, backend: str, precision: str, *, artifacts: Path | None, cache: Path,
    export: ExportSettings | None = None,
) -> ArtifactSpec:  # fmt: skip
    """The artifact to run for ``backend``/``precision``.

    Raises:
        ExportError: unknown precision, nothing in ``artifacts`` and no way to export it.
    """
    if precision not in KNOWN_PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", hint=f"known: {', '.join(KNOWN_PRECISIONS)}")
    if backend == "torch":
        if weights is None:
            raise ExportError("torch needs .safetensors weights", hint="pass --preset or --weights")
        return ArtifactSpec(weights, "weights")
    if artifacts is not None:
        found = find_artifact(artifacts, backend, precision)
        if found is not None:
            return ArtifactSpec(found, "artifacts")
        if weights is None:
            raise ExportError(f"no {backend} {precision} artifact in {artifacts}")
    if weights is None:
        raise ExportError(f"no weights to export {backend} {precision} from", hint="pass --preset or --weights")
    key = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]  # a changed weights file never reuses an export
    try:
        return ArtifactSpec(_export(weights, backend, precision, cache / key, export or ExportSettings()), "exported")
    except LLEError:
        raise
    except Exception as err:  # noqa: BLE001  (any exporter failure becomes this combination's reason)
        raise ExportError(f"export of {backend} {precision} failed: {type(err).__name__}: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""
