"""Find or make the artifact each (backend, precision) combination runs.

Order: an ``--artifacts`` folder written by ``lle export`` (its manifest JSONs, else file names), then an export
on the fly into a cache folder through the export library. A combination with no way to get an artifact raises
:class:`ExportError` naming why; the bench turns that into a failed row, never a crash.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from lle.errors import ExportError, LLEError

__all__ = ["KNOWN_PRECISIONS", "EXPORT_FORMATS", "export_format", "ArtifactSpec", "find_artifact", "resolve_artifact"]

log = logging.getLogger(__name__)

KNOWN_PRECISIONS = ("fp32", "fp16", "bf16", "int8")

# backend -> export format of lle.export (``lle export --format``); the precision carries over unchanged.
EXPORT_FORMATS: dict[str, str] = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}
_INT8_FORMAT = {"onnxruntime": "onnx-int8"}
_SUFFIXES = {"onnxruntime": (".onnx",), "openvino": (".xml", ".onnx"), "tensorrt": (".engine", ".plan", ".trt")}
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


def _from_manifests(folder: Path, backend: str, precision: str) -> Path | None:
    fmt = export_format(backend, precision)
    for mf in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(mf.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "artifact" not in data:
            continue
        got = data.get("format", data.get("target"))
        if got == fmt and data.get("precision", precision) == precision:
            path = Path(data["artifact"])
            path = path if path.is_absolute() else mf.parent / path
            if path.is_file():
                return path
    return None


def find_artifact(folder: Path, backend: str, precision: str) -> Path | None:
    """The artifact for ``backend``/``precision`` in an ``lle export`` folder, or None.

    A manifest JSON beside the artifact (``artifact``, ``format``, ``precision`` keys) wins; otherwise the file
    suffix plus a precision tag in the name (``int8``/``qdq`` -> int8, ``fp16``, else fp32). OpenVINO fp16/bf16
    run an fp32 IR with a precision hint when no fp16 IR exists.
    """
    found = _from_manifests(folder, backend, precision)
    if found is not None:
        return found
    suffixes = _SUFFIXES.get(backend, ())
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    for want in (precision, "fp32") if backend == "openvino" and precision in {"fp16", "bf16"} else (precision,):
        for suf in suffixes:  # the backend's native format first (.xml before .onnx for OpenVINO)
            hits = [p for p in files if p.suffix.lower() == suf and _precision_of_name(p) == want]
            if hits:
                return hits[0]
    return None


def _export(weights: Path, backend: str, precision: str, cache: Path) -> Path:
    fmt = export_format(backend, precision)
    if fmt is None:
        raise ExportError(f"no export format feeds backend {backend!r}", hint=f"formats: {', '.join(EXPORT_FORMATS)}")
    out = cache / f"{fmt}-{precision}"
    try:
        api = importlib.import_module("lle.export.api")
    except ImportError:
        api = None
    if api is not None and hasattr(api, "export_model"):
        from lle.export.config import ExportConfig

        cfg = ExportConfig(name=f"bench-{fmt}-{precision}", format=fmt, precision=precision)
        result = api.export_model(weights, cfg, out)
        return Path(getattr(result, "artifact", None) or getattr(result, "path", None) or result)
    if (fmt, precision) == ("onnx", "fp32") or (fmt == "openvino" and precision != "int8"):
        # OpenVINO reads ONNX directly; the backend applies the fp16/bf16 precision hint at compile time.
        from lle.export.onnx_export import export_onnx
        from lle.models.checkpoint import load_model

        onnx_path = cache / "onnx-fp32" / f"{weights.stem}.onnx"
        if onnx_path.is_file():
            return onnx_path
        model, card = load_model(weights)
        return export_onnx(model, onnx_path, card=card)
    raise ExportError(f"cannot export {fmt} {precision}: lle.export has no export_model yet", hint="pass --artifacts")


def resolve_artifact(
    weights: Path | None, backend: str, precision: str, *, artifacts: Path | None, cache: Path
) -> ArtifactSpec:
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
        return ArtifactSpec(_export(weights, backend, precision, cache / key), "exported")
    except LLEError:
        raise
    except Exception as err:  # noqa: BLE001  (any exporter failure becomes this combination's reason)
        raise ExportError(f"export of {backend} {precision} failed: {type(err).__name__}: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else ""
