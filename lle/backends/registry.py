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

__all__ = ["BACKENDS", "available_backends", "backend_class", "list_backends", "load_backend"]

BACKENDS: dict[str, str] = {
    "torch": "lle.backends.torch_backend:TorchBackend",
    "onnxruntime": "lle.backends.ort_backend:OrtBackend",
    "openvino": "lle.backends.openvino_backend:OpenVinoBackend",
    "tensorrt": "lle.backends.trt_backend:TrtBackend",
}
ALIASES = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}
_RUNTIME_MODULE = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt"}


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
        mod = _RUNTIME_MODULE.get(name)
        if mod is None or importlib.util.find_spec(mod) is not None:
            out.append(name)
    return out


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
    """Construct and load backend ``name`` on ``model_path``. The caller closes it (or uses ``with``)."""
    backend = backend_class(name)(Path(model_path), **opts)
    backend.load()
    return backend
