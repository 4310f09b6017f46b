"""Preset names as models: ``lle run realtime --source ...`` runs the bundled weights without an explicit export.

The bundled weights are exported once into a cache folder (``$LLE_CACHE`` or ``~/.cache/lle``), keyed by the
weights' and the model card's sha256, the lle version and the graph I/O, so later runs start at once and an update of
the weights or of their card re-exports.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lle.errors import InputError, LLEError, MissingDependencyError
from lle.models.registry import BUILTIN

__all__ = [
    "AUTO_RUNTIMES", "PRESETS", "WEIGHTS_DIR", "Picker", "bundled_weights", "cache_dir", "is_preset_name",
    "resolve_model",
]  # fmt: skip

log = logging.getLogger(__name__)

PRESETS = tuple(BUILTIN)
"""Preset names (the bundled registry keys of :mod:`lle.models`), listed without importing torch."""

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

AUTO_RUNTIMES = (("onnxruntime", "onnxruntime"), ("openvino", "openvino"))
"""(backend, module) of the runtimes ``auto`` runs a preset's ONNX export with, in the order used without a picker."""

Picker = Callable[[Path, tuple[str, ...]], str]
"""``picker(onnx_path, installed_runtimes) -> backend``: how ``auto`` chooses (see :mod:`lle.runtime_pick`)."""


def is_preset_name(model: str | Path) -> bool:
    """True when ``model`` names a preset and no file or folder of that name exists."""
    return str(model) in PRESETS and not Path(model).exists()


def bundled_weights(preset: str, *, hint: str = "pass a model file") -> Path:
    """The bundled weights of ``preset``; ``hint`` is the fix shown when they are missing.

    Raises:
        InputError: unknown preset or missing weights file.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}", hint=f"valid presets: {', '.join(PRESETS)}")
    path = WEIGHTS_DIR / f"{preset}.safetensors"
    if not path.is_file():
        raise InputError(f"no bundled weights for preset {preset!r} in {WEIGHTS_DIR}", hint=hint)
    return path


def cache_dir() -> Path:
    """Where exports of bundled weights are kept: ``$LLE_CACHE`` or ``~/.cache/lle``."""
    return Path(os.environ.get("LLE_CACHE") or Path.home() / ".cache" / "lle")


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _cached_onnx(preset: str, weights: Path, io: str) -> Path:
    from lle import __version__
    from lle.export.manifest import sha256_file
    from lle.export.onnx_export import export_onnx
    from lle.models.checkpoint import load_model

    card_json = weights.with_suffix(".json")  # the card holds the architecture (curve settings): part of the key
    card_sha = sha256_file(card_json)[:8] if card_json.is_file() else "nocard"
    key = f"{preset}-{sha256_file(weights)[:16]}-{card_sha}-{__version__}-{io}"
    path = cache_dir() / key / "model.onnx"
    if path.is_file():
        return path
    log.info("first run of preset %s: exporting %s to %s (once)", preset, weights.name, path)
    model, card = load_model(weights)
    try:
        return export_onnx(model, path, card=card, io=io)
    except OSError as err:
        raise InputError(f"cannot write the export cache {path.parent}: {err.strerror}",
                         hint="set LLE_CACHE to a writable folder") from err


def _remote(backend: str) -> bool:
    """Whether ``backend`` takes a server-side model name (a preset name is then not a bundled preset)."""
    from lle.backends.registry import backend_class

    try:
        return backend_class(backend).remote
    except LLEError:  # an unknown name fails later with the full list of backends
        return False


def resolve_model(
    model: str | Path, backend: str, *, video: bool = False, picker: Picker | None = None
) -> tuple[Path, str, dict[str, Any]]:
    """What to run for ``model`` with ``backend``: ``(artifact, backend name, backend options)``.

    A file is returned as it is. A preset name gets its bundled weights: with ``auto``, ``onnxruntime`` or
    ``openvino`` an ONNX export of them (cached; the realtime preset as a uint8 frame graph: BGR frames, or I420
    frames when ``video``, which video decoders give without a colour conversion), with ``torch`` the weights
    themselves (the realtime preset on frames through the same graph). ``auto`` runs the export with the installed
    runtime of :data:`AUTO_RUNTIMES` that ``picker`` returns (``lle run`` measures them: :mod:`lle.runtime_pick`;
    without a picker the first installed one), else the weights with torch. An explicit backend is never replaced.

    Raises:
        InputError: unknown preset or missing weights.
        MissingDependencyError: nothing installed can run or export the weights (names the extra).
    """
    if not is_preset_name(model) or (backend != "auto" and _remote(backend)):
        return Path(model), backend, {}
    preset = str(model)
    weights = bundled_weights(preset)
    io = ("i420" if video else "uint8") if preset == "realtime" else "float32"
    torch_opts: dict[str, Any] = {"frames": "i420" if io == "i420" else True} if preset == "realtime" else {}
    can_export = _have("torch", "onnx")
    if backend == "torch":
        return weights, "torch", torch_opts
    if backend == "auto":
        runtimes = tuple(name for name, module in AUTO_RUNTIMES if can_export and _have(module))
        if runtimes:
            onnx = _cached_onnx(preset, weights, io)
            return onnx, (runtimes[0] if picker is None else picker(onnx, runtimes)), {}
        if _have("torch"):
            return weights, "torch", torch_opts
        raise MissingDependencyError(
            f"running preset {preset!r} needs torch (to run or export its weights)",
            hint="pip install 'lle[onnx]', or export once elsewhere and pass the .onnx/.xml",
        )
    if backend in ("onnxruntime", "ort", "openvino", "ov"):
        if not can_export:
            raise MissingDependencyError(f"running preset {preset!r} with {backend} needs an ONNX export first",
                                         hint="pip install 'lle[onnx]', or pass an exported .onnx/.xml")
        return _cached_onnx(preset, weights, io), backend, {}
    raise InputError(f"backend {backend!r} cannot run preset {preset!r} directly",
                     hint=f"export it first: lle export --preset {preset} ...")
