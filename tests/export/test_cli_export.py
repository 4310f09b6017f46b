"""`lle export` and `lle calib build` through Typer's CliRunner, on tiny weights."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from lle.cli import calib as calib_cli
from lle.cli import export as export_cli


def _app() -> typer.Typer:
    app = typer.Typer()
    export_cli.register(app)
    calib_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps `export` a subcommand
        pass

    return app


def test_export_onnx_writes_artifacts_and_summary(tiny_weights, tmp_path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(_app(), ["export", "--weights", str(tiny_weights["realtime"]), "--format", "onnx",
                                      "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "model.onnx").is_file() and (out / "model.onnx.json").is_file()
    assert (out / "model.reference.npz").is_file() and (out / "export.resolved.yaml").is_file()
    assert "model.onnx" in res.stdout and "max abs" in res.stdout


def test_missing_weights_is_one_line_error(tmp_path) -> None:
    res = CliRunner().invoke(_app(), ["export", "--weights", str(tmp_path / "none.safetensors"), "--format", "onnx",
                                      "--out", str(tmp_path)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "weights file not found" in lines[0]


def test_bad_format_value_lists_choices(tiny_weights, tmp_path) -> None:
    res = CliRunner().invoke(_app(), ["export", "--weights", str(tiny_weights["quality"]), "--format", "tflite",
                                      "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "tflite" in res.output and "onnx-int8" in res.output


def test_int8_without_calib_and_bad_hw_are_one_line_errors(tiny_weights, tmp_path) -> None:
    w = str(tiny_weights["quality"])
    res = CliRunner().invoke(_app(), ["export", "--weights", w, "--format", "onnx-int8", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "onnx-int8 needs calibration images" in res.output
    res = CliRunner().invoke(_app(), ["export", "--weights", w, "--format", "tensorrt", "--opt-hw", "720p",
                                      "--out", str(tmp_path)])
    assert res.exit_code == 1 and "--opt-hw '720p' is not HEIGHTxWIDTH" in res.output
    res = CliRunner().invoke(_app(), ["export", "--weights", w, "--format", "onnx-int8", "--precision", "fp16",
                                      "--out", str(tmp_path)])
    assert res.exit_code == 1 and "no export for format 'onnx-int8' at precision 'fp16'" in res.output


def test_no_bundled_weights_is_a_clear_error(tmp_path, monkeypatch) -> None:
    import lle.presets

    monkeypatch.setattr(lle.presets, "WEIGHTS_DIR", tmp_path / "empty")
    res = CliRunner().invoke(_app(), ["export", "--preset", "realtime", "--format", "onnx", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "no bundled weights for preset 'realtime'" in res.output


def test_bundled_realtime_exports_to_uint8_onnx_and_openvino_with_parity(tmp_path) -> None:
    import json

    res = CliRunner().invoke(_app(), ["export", "--preset", "realtime", "--format", "openvino", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in ("model.onnx.json", "model.xml.json"):
        man = json.loads((tmp_path / name).read_text())
        assert man["graph_io"] == "uint8" and man["parity"]["passed"] and man["parity"]["max_abs"] <= 1.0


def test_bundled_quality_exports_to_float_onnx_with_parity(tmp_path) -> None:
    import json

    res = CliRunner().invoke(_app(), ["export", "--preset", "quality", "--format", "onnx", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    man = json.loads((tmp_path / "model.onnx.json").read_text())
    assert man["graph_io"] == "float32" and man["parity"]["passed"] and man["parity"]["max_abs"] <= 1e-4


def test_calib_build_from_images(tmp_path) -> None:
    import numpy as np

    from lle.io.image import write_image

    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        write_image(src / f"{i}.png", np.full((40, 60, 3), i / 20, np.float32))
    res = CliRunner().invoke(_app(), ["calib", "build", str(src), "--out", str(tmp_path / "cal"), "--n", "4",
                                      "--max-side", "32"])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "cal").glob("*.jpg"))
    assert len(files) == 4
    res = CliRunner().invoke(_app(), ["calib", "build", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "source folder not found" in res.output


def test_int8_export_records_the_mixed_precision_plan_and_no_mixed_turns_it_off(tiny_weights, tmp_path) -> None:
    import json
    from pathlib import Path

    calib = Path(__file__).resolve().parents[2] / "calibration_data" / "images"
    base = ["export", "--weights", str(tiny_weights["quality"]), "--format", "onnx-int8", "--calib", str(calib),
            "--calib-n", "8", "--calib-hw", "64x96", "--min-psnr", "60"]
    res = CliRunner().invoke(_app(), [*base, "--out", str(tmp_path / "mixed")])
    man = json.loads((tmp_path / "mixed" / "model.int8.qdq.onnx.json").read_text())
    assert res.exit_code == 0, res.output
    plan = man["mixed_precision"]
    assert plan["float_layers"] and plan["mixed_probe_psnr"] > plan["int8_probe_psnr"]
    assert man["qdq"]["float_convs"] == len(plan["float_layers"])
    assert (tmp_path / "mixed" / "model.int8.plan.json").is_file()
    # All-INT8 misses 60 dB on the tiny quality model (~46 dB): the parity check fails with a one-line error.
    res = CliRunner().invoke(_app(), [*base, "--no-mixed", "--out", str(tmp_path / "plain")])
    assert res.exit_code == 1 and "does not match the reference" in res.output
    man = json.loads((tmp_path / "plain" / "model.int8.qdq.onnx.json").read_text())
    assert man["mixed_precision"]["float_layers"] == [] and man["qdq"]["float_convs"] == 0


def _resolved(folder) -> dict:
    import yaml

    return yaml.safe_load((folder / "export.resolved.yaml").read_text())


def test_cpu_deployment_profiles_export_what_they_say(tiny_weights, tmp_path) -> None:
    """Both CPU profiles exported with tiny weights: format, precision and input sizes as the profile says."""
    import json
    from pathlib import Path

    import pytest

    from lle.export.config import load_profile

    root = Path(__file__).resolve().parents[2]
    calib = root / "calibration_data" / "images"
    for name, artifact, extra in (
        ("x86-onnxruntime", "model.onnx", []),
        ("x86-openvino-int8", "model.int8.xml", ["--calib", str(calib), "--calib-n", "12", "--calib-hw", "64x96"]),
    ):
        if name == "x86-openvino-int8":
            pytest.importorskip("nncf")
        prof = load_profile(root / "export" / f"{name}.toml")
        out = tmp_path / name
        res = CliRunner().invoke(_app(), ["export", "--weights", str(tiny_weights["realtime"]), "--profile",
                                          str(root / "export" / f"{name}.toml"), "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        man = json.loads((out / f"{artifact}.json").read_text())
        fmt = {"onnx": "onnx", "openvino": "openvino"}[prof.format]
        assert man["format"] == fmt and man["precision"] == prof.precision
        dep = man["deployment"]
        assert dep["profile"] == name
        assert (dep["min_hw"], dep["opt_hw"], dep["max_hw"]) == tuple(
            list(hw) for hw in (prof.input.min_hw, prof.input.opt_hw, prof.input.max_hw))
        cfg = _resolved(out)
        assert cfg["name"] == name and cfg["format"] == prof.format and cfg["precision"] == prof.precision
        if extra:  # flags override the profile's values, the rest stays the profile's
            assert prof.calibration.n == 64 and cfg["calibration"]["n"] == 12
            assert man["calibration"]["n"] == 12 and man["calibration"]["hw"] == [64, 96]
            assert cfg["openvino"]["preset"] == prof.openvino.preset


def test_a_flag_overrides_the_profile_precision(tiny_weights, tmp_path) -> None:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "fp16"
    res = CliRunner().invoke(_app(), ["export", "--weights", str(tiny_weights["realtime"]), "--profile",
                                      str(root / "export" / "x86-openvino-int8.toml"), "--precision", "fp16",
                                      "--opt-hw", "480x640", "--out", str(out)])
    assert res.exit_code == 0, res.output
    man = json.loads((out / "model.fp16.xml.json").read_text())
    assert man["precision"] == "fp16" and man["deployment"]["opt_hw"] == [480, 640]
    assert man["deployment"]["profile"] == "x86-openvino-int8"
