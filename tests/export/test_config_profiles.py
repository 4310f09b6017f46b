from __future__ import annotations

from pathlib import Path

import pytest

from lle.errors import ConfigError
from lle.export import TARGETS, resolve_target
from lle.export.config import ExportConfig, load_profile, with_overrides

PROFILES = sorted((Path(__file__).resolve().parents[2] / "export").glob("*.toml"))


def test_there_are_the_five_deployment_profiles() -> None:
    assert {p.stem for p in PROFILES} >= {
        "jetson-orin-nano", "jetson-agx-orin", "x86-openvino-int8", "x86-onnxruntime", "server-gpu-tensorrt-fp16"
    }


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_parses_to_a_valid_target(path: Path) -> None:
    cfg = load_profile(path)
    assert cfg.name == path.stem and cfg.description
    assert resolve_target(cfg.format, cfg.precision) in TARGETS
    lo, opt, hi = cfg.input.min_hw, cfg.input.opt_hw, cfg.input.max_hw
    assert lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]
    assert cfg.calib_hw == (cfg.calibration.hw or opt)


def test_agx_orin_uses_dla_with_gpu_fallback() -> None:
    cfg = load_profile(next(p for p in PROFILES if p.stem == "jetson-agx-orin"))
    assert cfg.tensorrt.dla_core == 0 and cfg.tensorrt.gpu_fallback and cfg.tensorrt.legacy_calibrator


def test_unknown_key_names_the_valid_keys(tmp_path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('format = "onnx"\n[tensorrt]\nworkspace = 10\n')
    with pytest.raises(ConfigError, match="bad.toml: unknown config key tensorrt.workspace") as e:
        load_profile(p)
    assert "workspace_mib" in (e.value.hint or "")
    p.write_text('formatt = "onnx"\n')
    with pytest.raises(ConfigError, match="unknown config key formatt") as e:
        load_profile(p)
    assert "precision" in (e.value.hint or "")


@pytest.mark.parametrize(("text", "match"), [
    ('format = "tflite"\n', "format 'tflite' is not valid"),
    ('precision = "int4"\n', "precision 'int4' is not valid"),
    ('opset = 13\n', "opset 13 is too old"),
    ('[input]\nmin_hw = [720, 720]\nopt_hw = [480, 640]\n', "min <= opt <= max"),
    ('[calibration]\nmethod = "kl"\n', "calibration.method 'kl'"),
    ('[tensorrt]\nopt_level = "high"\n', "tensorrt.opt_level: expected int"),
    ('format = \n', "not valid TOML"),
])
def test_bad_values_are_config_errors(tmp_path, text, match) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_profile(p)


def test_missing_profile_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "none.toml")


def test_overrides_and_targets() -> None:
    cfg = with_overrides(ExportConfig(), precision="fp16", input__opt_hw=(480, 640), tensorrt__dla_core=None)
    assert cfg.precision == "fp16" and cfg.input.opt_hw == (480, 640) and cfg.tensorrt.dla_core == -1
    assert resolve_target("onnx-int8", "int8") == "onnx-int8"
    assert resolve_target("openvino", "fp16") == "openvino-fp16"
    with pytest.raises(ConfigError, match="no export for format 'onnx-int8' at precision 'fp16'"):
        resolve_target("onnx-int8", "fp16")
    for steps in TARGETS.values():
        assert steps[0].__name__ == "to_onnx"
