"""Manifest JSON beside every artifact, and the parity numbers that go into it.

A manifest records what the artifact is (I/O shapes, opset, precision), what made it (tool versions, source sha256)
and how well it matches the PyTorch reference (max abs/rel diff, PSNR).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lle._atomic import atomic_write_bytes
from lle.errors import ParityError
from lle.psnr import psnr as _psnr

__all__ = [
    "ParityResult",
    "check_parity",
    "compare",
    "manifest_path",
    "psnr",
    "read_manifest",
    "sha256_file",
    "tool_versions",
    "update_manifest",
    "write_manifest",
]

_TOOLS = ("lle", "torch", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf", "tensorrt", "numpy")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (a directory artifact hashes its files in name order)."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
    for p in files:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools that may take part in an export (absent ones are left out)."""
    from lle.host import versions

    return versions(_TOOLS)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two arrays in [0, 1] (both clipped to [0, 1] first, as the pipeline does); uncapped.

    Example:
        >>> round(psnr(np.zeros(4), np.full(4, 0.1)), 1)
        20.0
    """
    return _psnr(a, b, clip=True, cap=math.inf)


@dataclass(frozen=True, slots=True)
class ParityResult:
    """How one artifact compares with the reference on the same inputs."""

    kind: str
    """"atol" (max abs diff bound) or "psnr" (lower bound in dB)."""
    max_abs: float
    max_rel: float
    psnr_db: float
    threshold: float
    passed: bool
    n_inputs: int
    finite: bool = True

    def summary(self) -> str:
        if self.kind == "psnr":
            return f"{self.psnr_db:.1f} dB (>= {self.threshold:g})"
        return f"max abs {self.max_abs:.1e} (<= {self.threshold:g})"


def compare(outputs: list[np.ndarray], refs: list[np.ndarray], *, kind: str, threshold: float) -> ParityResult:
    """Compare artifact ``outputs`` with reference ``refs`` (pairwise, any shapes).

    ``kind="atol"`` passes when the max abs diff is ``<= threshold``; ``kind="psnr"`` when the PSNR of the clipped
    outputs (all pairs pooled) is ``>= threshold``. Non-finite outputs never pass.
    """
    if len(outputs) != len(refs) or not refs:
        raise ValueError(f"need as many outputs as references, got {len(outputs)} and {len(refs)}")
    finite = all(bool(np.isfinite(o).all()) for o in outputs)
    diffs = [np.abs(o.astype(np.float64) - r.astype(np.float64)) for o, r in zip(outputs, refs, strict=True)]
    max_abs = max(float(d.max()) for d in diffs)
    max_rel = max(float((d / np.maximum(np.abs(r), 1e-3)).max()) for d, r in zip(diffs, refs, strict=True))
    # Capped so that identical outputs still give a finite number in the JSON manifest.
    score = min(100.0, psnr(np.concatenate([o.ravel() for o in outputs]), np.concatenate([r.ravel() for r in refs])))
    passed = finite and (max_abs <= threshold if kind == "atol" else score >= threshold)
    return ParityResult(kind, max_abs, max_rel, score, threshold, passed, len(refs), finite)


def check_parity(result: ParityResult, artifact: Path) -> ParityResult:
    """Raise :class:`ParityError` when ``result`` failed, else return it.

    Raises:
        ParityError: with the max abs/rel diff, the PSNR and the bound that was missed.
    """
    if result.passed:
        return result
    why = "non-finite values (NaN/Inf) in the output; " if not result.finite else ""
    bound = f"PSNR >= {result.threshold:g} dB" if result.kind == "psnr" else f"max abs diff <= {result.threshold:g}"
    raise ParityError(
        f"{artifact.name} does not match the reference: {why}max abs diff {result.max_abs:.3g}, "
        f"max rel diff {result.max_rel:.3g}, PSNR {result.psnr_db:.2f} dB; expected {bound}",
        hint="for INT8 use more/better calibration images (--calib) or a lower min_psnr in the profile",
    )


def manifest_path(artifact: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    return artifact.with_name(artifact.name + ".json")


def write_manifest(artifact: Path, **fields: Any) -> Path:
    """Write the manifest JSON beside ``artifact`` (sha256, size, tool versions, date, plus ``fields``)."""
    artifact = Path(artifact)
    data: dict[str, Any] = {
        "artifact": artifact.name,
        "sha256": {p.name: sha256_file(p) for p in _files(artifact)},
        "size_bytes": sum(p.stat().st_size for p in _files(artifact)),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tools": tool_versions(),
    }
    return _dump(artifact, {**data, **fields})


def update_manifest(artifact: Path, **fields: Any) -> Path:
    """Add ``fields`` to ``artifact``'s manifest (written atomically; checksums and the rest kept as they are)."""
    return _dump(Path(artifact), {**read_manifest(artifact), **fields})


def _dump(artifact: Path, data: dict[str, Any]) -> Path:
    data = {k: asdict(v) if isinstance(v, ParityResult) else v for k, v in data.items()}
    path = manifest_path(artifact)
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n").encode())
    return path


def read_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest of ``artifact`` as a dict (empty when there is none)."""
    path = manifest_path(Path(artifact))
    return json.loads(path.read_text()) if path.is_file() else {}


def _files(artifact: Path) -> list[Path]:
    """An artifact and the files that belong to it (OpenVINO ``.xml`` has its ``.bin``)."""
    weights = artifact.with_suffix(".bin")
    return [artifact, weights] if artifact.suffix == ".xml" and weights.is_file() else [artifact]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
