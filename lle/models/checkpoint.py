"""Weights as ``.safetensors`` plus a JSON model card beside them. Nothing is ever unpickled."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lle._atomic import atomic_write_bytes
from lle.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ModelCard", "card_path", "load_card", "load_model", "save_model"]


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What a weights file is and how it was made.

    ``normalisation`` documents the I/O contract: RGB, NCHW, float32 in [0, 1], no mean/std.
    """

    preset: str
    arch: dict[str, Any]
    size_multiple: int
    normalisation: str = "RGB NCHW float32 in [0, 1]; no mean/std; output clipped to [0, 1]"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    lle_version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        known = {
            k: d[k]
            for k in ("preset", "arch", "size_multiple", "normalisation", "training", "metrics", "lle_version")
            if k in d
        }
        missing = {"preset", "arch", "size_multiple"} - known.keys()
        if missing:
            raise InputError(f"model card is missing {sorted(missing)}")
        return cls(**known)


def card_path(weights: Path) -> Path:
    """The model card that belongs to ``weights`` (``x.safetensors`` -> ``x.json``)."""
    return weights.with_suffix(".json")


def save_model(model: nn.Module, path: Path, card: ModelCard, *, half: bool = False) -> Path:
    """Write ``model``'s weights to ``path`` (.safetensors) and ``card`` beside it, atomically.

    ``half`` stores float16 (half the size; loading casts back to the model's float32).
    """
    from safetensors.torch import save

    from lle import __version__

    card = ModelCard(**{**asdict(card), "lle_version": card.lle_version or __version__})
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() for k, v in state.items()}
    atomic_write_bytes(path, save(state, metadata={"model_card": card.to_json()}))
    atomic_write_bytes(card_path(path), card.to_json().encode() + b"\n")
    return path


def load_card(weights: Path) -> ModelCard:
    """Read the model card of ``weights``: the JSON beside it, else the copy inside the safetensors header.

    Raises:
        InputError: the file is missing, not safetensors, or has no card.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise InputError(f"weights file not found: {weights}", hint="pass --weights PATH to a .safetensors file")
    side = card_path(weights)
    try:
        if side.is_file():
            return ModelCard.from_dict(json.loads(side.read_text()))
        from safetensors import safe_open

        with safe_open(str(weights), framework="numpy") as f:
            meta = f.metadata() or {}
        if "model_card" not in meta:
            raise InputError(f"{weights} has no model card (expected {side.name} beside it)")
        return ModelCard.from_dict(json.loads(meta["model_card"]))
    except (json.JSONDecodeError, OSError, ValueError) as err:
        raise InputError(f"cannot read model card of {weights}: {err}") from err
    except Exception as err:  # safetensors raises its own SafetensorError for a non-safetensors file
        if isinstance(err, InputError):
            raise
        raise InputError(f"{weights} is not a safetensors weights file: {err}") from err


def load_model(weights: Path, *, strict: bool = True) -> tuple[nn.Module, ModelCard]:
    """Build the preset named in the card and load ``weights`` into it. Returns (model in eval mode, card).

    Raises:
        InputError: missing/invalid file or weights that do not fit the preset.
    """
    from safetensors.torch import load_file

    from lle.models.registry import create_model

    card = load_card(weights)
    model = create_model(card.preset, **card.arch)
    try:
        state = load_file(str(weights))
        model.load_state_dict(state, strict=strict)
    except Exception as err:
        raise InputError(
            f"{weights} does not fit preset {card.preset!r} {card.arch}: {str(err).splitlines()[0]}"
        ) from err
    return model.eval(), card
