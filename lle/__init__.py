"""lle: low-light image and video enhancement for edge devices.

Heavy names are re-exported lazily so that ``import lle`` pulls in neither torch nor any runtime.
"""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"
__all__ = ["ImageEnhancer", "__version__", "create_model", "load_backend", "load_model"]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "ImageEnhancer": "lle.api",
    "create_model": "lle.models.registry",
    "load_model": "lle.models.checkpoint",
    "load_backend": "lle.backends.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lle' has no attribute {name!r}")
