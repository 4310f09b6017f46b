"""Model registry: preset name -> builder. Registry keys double as CLI names.

This module imports no model: each preset module registers itself with :func:`register_model` when it is
imported, and :data:`BUILTIN` names the module of every bundled preset (strings, as the backend registry does), so
the registry stays below the models it lists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lle.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["BUILTIN", "create_model", "list_models", "register_model"]

BUILTIN: dict[str, str] = {"quality": "lle.models.unet", "realtime": "lle.models.realtime"}
"""Bundled preset -> the module that registers it. :data:`lle.presets.PRESETS` lists the same names torch-free."""

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under ``name`` (lowercase)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    return wrap


def _ensure_builtin() -> None:
    for module in BUILTIN.values():
        importlib.import_module(module)


def list_models() -> list[str]:
    """Names of all registered presets, sorted."""
    _ensure_builtin()
    return sorted(_MODELS)


def create_model(name: str, **arch: Any) -> nn.Module:
    """Build preset ``name`` with architecture overrides ``arch``.

    Raises:
        ConfigError: unknown preset or unknown architecture argument.

    Example:
        >>> m = create_model("quality", width=4)
        >>> type(m).__name__
        'QualityUNet'
    """
    _ensure_builtin()
    if name not in _MODELS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(sorted(_MODELS))}")
    try:
        return _MODELS[name](**arch)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"bad architecture argument for preset {name!r}: {err}") from err
