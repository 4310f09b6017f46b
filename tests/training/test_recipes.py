"""The shipped training recipes parse into a TrainConfig and say what the bundled weights were trained with."""

from __future__ import annotations

from pathlib import Path

import pytest

from lle.config import load_config
from lle.models.checkpoint import load_card
from lle.presets import PRESETS
from lle.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset", PRESETS)
def test_recipe_parses_and_matches_the_bundled_architecture(preset: str) -> None:
    cfg = load_config(TrainConfig, ROOT / "training" / "configs" / f"{preset}.yaml", [])
    card = load_card(ROOT / "lle" / "weights" / f"{preset}.safetensors")
    assert cfg.model.preset == card.preset == preset
    assert {k: v for k, v in cfg.model.arch.items()} == card.arch
    assert cfg.data.real_repeat >= 1 and cfg.data.pairs and cfg.data.clean
    # the recipe is the one the shipped weights' last run used
    assert (cfg.batch, cfg.data.crop) == (card.training["batch"], card.training["crop"])


def test_recipe_overrides_apply() -> None:
    cfg = load_config(TrainConfig, ROOT / "training" / "configs" / "realtime.yaml", ["data.real_repeat=1", "batch=2"])
    assert cfg.data.real_repeat == 1 and cfg.batch == 2
