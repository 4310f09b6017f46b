"""U-Net presets, their registry and safetensors checkpoints. Importing this package imports torch."""

from __future__ import annotations

from lle.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
