"""Backend registry: name -> "module:Class" strings, so listing backends imports no runtime.

Third-party backends register through the ``lle.backends`` entry-point group (value ``package.module:Class``).
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from lle.backends.base import Backend
from lle.errors import BackendError, ConfigError

__all__ = [
    "ALIASES", "BACKENDS", "RUNTIME_MODULES", "SUFFIX_BACKENDS", "auto_backend", "available_backends", "backend_class",
    "backend_suffixes", "list_backends", "load_backend",
]

BACKENDS: dict[str, str] = {
    "torch": "lle.backends.torch_backend:TorchBackend",
    "onnxruntime": "lle.backends.ort_backend:OrtBackend",
    "openvino": "lle.backends.openvino_backend:OpenVinoBackend",
    "tensorrt": "lle.backends.trt_backend:TrtBackend",
    "triton": "lle.backends.triton_backend:TritonBackend",
}
ALIASES = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}
# Artifact suffix -> backends that run it, fastest first. For .onnx on this project's reference CPU (2-core x86),
# onnxruntime beat OpenVINO on both presets with dynamic shapes (benchmarks/results/run_fps.md), so it comes first.
SUFFIX_BACKENDS: dict[str, tuple[str, ...]] = {
    ".safetensors": ("torch",),
    ".onnx": ("onnxruntime", "openvino"),
    ".xml": ("openvino",),
    ".plan": ("tensorrt",),
    ".engine": ("tensorrt",),
}


def backend_suffixes(name: str) -> tuple[str, ...]:
    """The artifact suffixes backend ``name`` (or an alias) runs, those it is the first choice for first.

    Example:
        >>> backend_suffixes("openvino"), backend_suffixes("trt")
        (('.xml', '.onnx'), ('.plan', '.engine'))
    """
    name = ALIASES.get(name, name)
    ranked = [(names.index(name), suffix) for suffix, names in SUFFIX_BACKENDS.items() if name in names]
    return tuple(suffix for _, suffix in sorted(ranked, key=lambda r: r[0]))


RUNTIME_MODULES = {
    "torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt",
    "triton": "tritonclient",
}  # fmt: skip
"""Backend -> the module (and distribution) of its runtime, looked up without importing it."""


def _all() -> dict[str, str]:
    out = dict(BACKENDS)
    for ep in entry_points(group="lle.backends"):
        out.setdefault(ep.name, ep.value)
    return out


def list_backends() -> list[str]:
    """Every registered backend name (built-in and entry points), sorted."""
    return sorted(_all())


def available_backends() -> list[str]:
    """Registered backends whose runtime is importable (checked without importing it)."""
    out = []
    for name in list_backends():
        mod = RUNTIME_MODULES.get(name)
        if mod is None or importlib.util.find_spec(mod) is not None:
            out.append(name)
    return out


def auto_backend(model_path: Path) -> str:
    """The fastest installed backend for ``model_path``, chosen by file type (see ``SUFFIX_BACKENDS``).

    Raises:
        ConfigError: unknown file type.
        MissingDependencyError: no runtime for this file type is installed (names the extra).
    """
    from lle.errors import MissingDependencyError

    suffix = Path(model_path).suffix.lower()
    if suffix not in SUFFIX_BACKENDS:
        raise ConfigError(
            f"cannot pick a backend for {Path(model_path).name}: unknown model type {suffix or '(none)'}",
            hint=f"expected one of {', '.join(SUFFIX_BACKENDS)}",
        )
    have = set(available_backends())
    for name in SUFFIX_BACKENDS[suffix]:
        if name in have:
            return name
    first = SUFFIX_BACKENDS[suffix][0]
    raise MissingDependencyError(
        f"no installed runtime runs {suffix} models (tried {', '.join(SUFFIX_BACKENDS[suffix])})",
        hint=f"pip install 'lle[{first}]'",
    )


def backend_class(name: str) -> type[Backend]:
    """Resolve ``name`` (or an alias: ort, ov, trt) to its class, importing only that backend's module.

    Raises:
        ConfigError: unknown name (the message lists the valid ones).
    """
    name = ALIASES.get(name, name)
    table = _all()
    if name not in table:
        valid = ", ".join(sorted([*table, *ALIASES]))
        raise ConfigError(f"unknown backend {name!r}; valid backends: {valid}")
    mod_name, _, cls_name = table[name].partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as err:
        raise BackendError(f"backend {name!r} ({table[name]}) cannot be imported: {err}") from err
    return cls  # type: ignore[no-any-return]


def load_backend(name: str, model_path: Path, **opts: Any) -> Backend:
    """Construct and load backend ``name`` (or ``"auto"``) on ``model_path``. The caller closes it (or uses ``with``).

    Raises:
        ConfigError: unknown backend name or model type.
        MissingDependencyError: the backend's runtime is not installed.
        BackendError: the artifact cannot be loaded.
    """
    if name == "auto":
        name = auto_backend(model_path)
    backend = backend_class(name)(Path(model_path), **opts)
    backend.load()
    return backend
