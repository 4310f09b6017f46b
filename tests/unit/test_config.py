from __future__ import annotations

import pytest

from lle.config import dump_config, load_config
from lle.errors import ConfigError
from lle.training.config import TrainConfig


def test_yaml_and_overrides_are_typed(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("model: {preset: realtime}\nsteps: 10\ndata: {crop: 64}\n")
    cfg = load_config(TrainConfig, p, ["steps=25", "optim.lr=0.01", "data.scale=[0.5, 0.9]", "data.synth.ev=[1, 2]"])
    assert cfg.model.preset == "realtime" and cfg.steps == 25 and cfg.data.crop == 64
    assert cfg.optim.lr == 0.01 and cfg.data.scale == (0.5, 0.9) and cfg.data.synth.ev == (1.0, 2.0)
    dump_config(cfg, tmp_path / "out.yaml")
    again = load_config(TrainConfig, tmp_path / "out.yaml")
    assert again == cfg


def test_unknown_key_names_valid_keys() -> None:
    with pytest.raises(ConfigError, match="unknown config key optim.lrr") as e:
        load_config(TrainConfig, None, ["optim.lrr=1"])
    assert "lr" in (e.value.hint or "")


def test_wrong_type_and_malformed_override() -> None:
    with pytest.raises(ConfigError, match="steps: expected int"):
        load_config(TrainConfig, None, ["steps=abc"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(TrainConfig, None, ["steps"])
