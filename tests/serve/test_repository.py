"""Triton model repositories: configs parse as ModelConfig and match the graphs; bad input gives one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lle.errors import ConfigError, InputError
from lle.serve.repository import ArtifactIO, TritonConfig, artifact_io, model_config, parse_config, write_model

pytest.importorskip("tritonclient.grpc")

STATE = (5, 32, 32)


def _dims(msg) -> list[int]:
    return [int(d) for d in msg.dims]


def test_artifact_io_from_manifest(serve_onnx: dict[str, Path]) -> None:
    rt, q = artifact_io(serve_onnx["realtime"]), artifact_io(serve_onnx["quality"])
    assert (rt.preset, rt.frames, rt.size_multiple, rt.state_shape) == ("realtime", True, 1, STATE)
    assert (q.preset, q.frames, q.state_shape) == ("quality", False, None)
    assert q.size_multiple > 1


def test_python_sequence_model(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    folder = write_model([serve_onnx["realtime"]], tmp_path, TritonConfig(threads=1))
    assert folder == tmp_path / "realtime_python"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["1/model.onnx", "1/model.onnx.json", "1/model.py", "config.pbtxt"]
    cfg = parse_config((folder / "config.pbtxt").read_text())
    assert cfg.backend == "python" and cfg.max_batch_size == 0
    inputs = {i.name: i for i in cfg.input}
    assert _dims(inputs["input"]) == [1, -1, -1, 3] and inputs["input"].data_type == 2  # TYPE_UINT8
    assert _dims(inputs["alpha"]) == [1]
    assert _dims(cfg.output[0]) == [1, -1, -1, 3]
    seq = cfg.sequence_batching
    assert seq.oldest.max_candidate_sequences == 64 and not seq.state
    assert {c.name for c in seq.control_input} == {"START", "END"}
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert params["lle.state_shape"] == "5,32,32" and params["lle.runtime"] == "onnxruntime"
    assert params["lle.artifact"] == "model.onnx" and params["lle.threads"] == "1"
    assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_CPU


def test_python_stateless_model(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    folder = write_model([serve_onnx["quality"]], tmp_path, TritonConfig(), name="photos")
    cfg = parse_config((folder / "config.pbtxt").read_text())
    assert cfg.name == "photos" and cfg.max_batch_size == 8 and cfg.HasField("dynamic_batching")
    assert _dims(cfg.input[0]) == [3, -1, -1] and cfg.input[0].data_type == 11  # TYPE_FP32
    assert not cfg.HasField("sequence_batching")


def test_onnxruntime_implicit_state(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    folder = write_model([serve_onnx["realtime"]], tmp_path, TritonConfig(platform="onnxruntime"))
    cfg = parse_config((folder / "config.pbtxt").read_text())
    assert cfg.platform == "onnxruntime_onnx" and cfg.default_model_filename == "model.onnx"
    (state,) = cfg.sequence_batching.state
    assert (state.input_name, state.output_name) == ("state", "state_out")
    assert _dims(state) == [1, *STATE] and state.initial_state[0].zero_data
    assert not (folder / "1" / "model.py").exists()


def test_onnxruntime_gpu_with_tensorrt_accelerator(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    t = TritonConfig(platform="onnxruntime", device="gpu", instances=2, ort_tensorrt=True, precision="fp16")
    cfg = parse_config((write_model([serve_onnx["quality"]], tmp_path, t) / "config.pbtxt").read_text())
    (acc,) = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert acc.name == "tensorrt" and acc.parameters["precision_mode"] == "FP16"
    assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_GPU and cfg.instance_group[0].count == 2


def test_openvino_config_and_no_implicit_state() -> None:
    cfg = parse_config(model_config("q", ArtifactIO("quality", False, 16, None), TritonConfig(platform="openvino"),
                                    filename="model.xml"))
    assert cfg.backend == "openvino" and cfg.default_model_filename == "model.xml"
    with pytest.raises(ConfigError, match="no implicit state"):
        model_config("rt", ArtifactIO("realtime", True, 1, STATE), TritonConfig(platform="openvino"),
                     filename="model.xml")


def _fake_plan(folder: Path, cc: str, max_batch: int = 4) -> Path:
    plan = folder / f"model-{cc}.fp16.plan"
    plan.write_bytes(b"not an engine")
    shapes = {"input": {"min": [1, 3, 64, 64], "opt": [1, 3, 720, 1280], "max": [max_batch, 3, 1088, 1920]}}
    side = {"artifact": plan.name, "format": "tensorrt", "precision": "fp16", "preset": "quality", "size_multiple": 16,
            "engine": {"env": {"tensorrt": "10.3.0", "cuda": "12.6", "gpu": f"gpu {cc}", "compute_capability": cc},
                       "precision": "fp16", "strongly_typed": True, "profiles": shapes, "source_onnx": "model.onnx",
                       "source_sha256": "0" * 64}}
    plan.with_name(plan.name + ".json").write_text(json.dumps(side))
    return plan


def test_tensorrt_plans_per_compute_capability(tmp_path: Path) -> None:
    plans = [_fake_plan(tmp_path, "8.7"), _fake_plan(tmp_path, "9.0")]
    folder = write_model(plans, tmp_path / "repo", TritonConfig(platform="tensorrt", device="gpu"))
    cfg = parse_config((folder / "config.pbtxt").read_text())
    assert cfg.platform == "tensorrt_plan" and dict(cfg.cc_model_filenames) == {
        "8.7": "model_8.7.plan", "9.0": "model_9.0.plan"}
    assert cfg.max_batch_size == 4 and _dims(cfg.input[0]) == [3, -1, -1]
    assert (folder / "1" / "model_9.0.plan").read_bytes() == b"not an engine"
    with pytest.raises(InputError, match="appears twice"):
        write_model([plans[0], plans[0]], tmp_path / "repo2", TritonConfig(platform="tensorrt"))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"platform": "tflite"}, ConfigError, "triton platform 'tflite' is not valid"),
    ({"device": "tpu"}, ConfigError, "triton device 'tpu'"),
    ({"instances": 0}, ConfigError, "must be >= 1"),
    ({"ort_tensorrt": True}, ConfigError, "TensorRT accelerator is for the onnxruntime platform on GPU"),
])
def test_bad_triton_config(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        TritonConfig(**kwargs)


def test_bad_artifacts(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    onnx = serve_onnx["quality"]
    with pytest.raises(InputError, match="serves .plan/.engine files, got model.onnx"):
        write_model([onnx], tmp_path, TritonConfig(platform="tensorrt"))
    with pytest.raises(InputError, match="exactly one artifact"):
        write_model([onnx, onnx], tmp_path, TritonConfig())
    with pytest.raises(InputError, match="not a valid Triton model name"):
        write_model([onnx], tmp_path, TritonConfig(), name="../up")
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(onnx.read_bytes())
    with pytest.raises(InputError, match="no manifest bare.onnx.json"):
        write_model([bare], tmp_path, TritonConfig())
    with pytest.raises(InputError, match="artifact not found"):
        write_model([tmp_path / "nope.onnx"], tmp_path, TritonConfig())
    assert not any(tmp_path.glob("*/config.pbtxt"))


def test_cli_export_triton(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    from lle.cli.app import app

    repo = tmp_path / "repo"
    res = CliRunner().invoke(app, ["export", "--format", "triton", "--weights", str(tiny_weights["quality"]),
                                   "--triton-platform", "python,onnxruntime", "-o", str(repo)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in repo.iterdir()) == ["quality_onnxruntime", "quality_python"]
    for model in repo.iterdir():
        parse_config((model / "config.pbtxt").read_text())
        assert (model / "1" / "model.onnx").is_file()


def test_cli_export_triton_wraps_an_artifact(serve_onnx: dict[str, Path], tmp_path: Path) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["export", "--format", "triton", "--artifact", str(serve_onnx["realtime"]),
                                   "--model-name", "cam", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cam" / "1" / "model.py").is_file()


@pytest.mark.parametrize(("args", "match"), [
    (["--format", "onnx", "--model-name", "x"], "--artifact and --model-name are for --format triton"),
    (["--format", "triton", "--triton-platform", "python,onnxruntime", "--model-name", "x"], "one --triton-platform"),
    (["--format", "triton", "--triton-platform", "caffe"], "triton platform 'caffe' is not valid"),
    (["--format", "triton", "--triton-platform", ","], "names no platform"),
])
def test_cli_export_triton_bad_flags(args: list[str], match: str, tmp_path: Path) -> None:
    from lle.cli.app import app

    res = CliRunner().invoke(app, ["export", *args, "-o", str(tmp_path / "repo")])
    assert res.exit_code == 1
    assert match in res.output and "Traceback" not in res.output
