"""Weight averaging ("model soup"): the element-wise weighted mean of checkpoints of one architecture.

Checkpoints fine-tuned from the same weights sit in one basin of the loss, so their average is often better than
each of them (Wortsman et al., "Model soups", ICML 2022); averaging the last validation steps of one run is the
same idea along time (stochastic weight averaging). ``training/ship_weights.py`` uses it to ship a mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lle.errors import InputError
from lle.models.checkpoint import ModelCard, load_model

__all__ = ["average_weights", "parse_share"]


def parse_share(spec: str) -> tuple[Path, float]:
    """``PATH`` or ``PATH:SHARE`` -> (path, share); the share defaults to 1.

    Example:
        >>> parse_share("runs/a/val_2000.safetensors:0.5")
        (PosixPath('runs/a/val_2000.safetensors'), 0.5)
    """
    path, sep, share = spec.rpartition(":")
    if not sep or "/" in share or not share.replace(".", "", 1).isdigit():
        return Path(spec), 1.0
    if float(share) <= 0:
        raise InputError(f"{spec}: the share after ':' must be > 0")
    return Path(path), float(share)


def average_weights(parts: Sequence[tuple[Path, float]]) -> tuple[object, ModelCard]:
    """(model, card) whose tensors are the share-weighted mean of ``parts``' (shares are normalised to sum 1).

    The card is the first part's. All parts must be the same preset with the same tensors.

    Raises:
        InputError: no parts, or parts of different presets or architectures.
    """
    if not parts:
        raise InputError("nothing to average", hint="give at least one weights file")
    total = sum(s for _, s in parts)
    model, card = load_model(parts[0][0])
    acc = {k: v.double() * (parts[0][1] / total) for k, v in model.state_dict().items()}
    for path, share in parts[1:]:
        other, oc = load_model(path)
        sd = other.state_dict()
        if oc.preset != card.preset or sd.keys() != acc.keys() or any(sd[k].shape != acc[k].shape for k in acc):
            raise InputError(f"{path} is not the architecture of {parts[0][0]} ({oc.preset} {oc.arch} vs "
                             f"{card.preset} {card.arch})", hint="average checkpoints of one preset and arch")
        for k, v in sd.items():
            acc[k] += v.double() * (share / total)
    ref = model.state_dict()
    model.load_state_dict({k: v.to(ref[k].dtype) for k, v in acc.items()})
    return model, card
