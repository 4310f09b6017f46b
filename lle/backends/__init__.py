"""Pluggable inference backends. Importing this package imports no runtime."""

from __future__ import annotations

from lle.backends.base import Backend, BackendInfo, TensorSpec
from lle.backends.registry import auto_backend, available_backends, backend_class, list_backends, load_backend

__all__ = [
    "Backend", "BackendInfo", "TensorSpec", "auto_backend", "available_backends", "backend_class", "list_backends",
    "load_backend",
]
