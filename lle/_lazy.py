"""Import optional dependencies on first use, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from lle.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'lle[extra]'``.

    Example:
        >>> require("json", extra="core").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{module} is not installed (needed for this command)",
            hint=f"pip install 'lle[{extra}]'",
        ) from err
