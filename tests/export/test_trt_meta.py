"""TensorRT parts that run without TensorRT: profiles, trtexec line, sidecar checks, lazy import."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lle.errors import BackendError, ConfigError, MissingDependencyError
from lle.export.trt_meta import (
    EngineSpec,
    EnvironmentSpec,
    check_input_shape,
    legacy_path_allowed,
    read_sidecar,
    shape_profiles,
    trtexec_command,
    validate_sidecar,
)

ORIN = EnvironmentSpec("10.3.0.30", "12.6", "Orin", "8.7")
IO_RT = {"inputs": {"input": ["batch", 3, "height", "width"], "state": ["batch", 6, 128, 128], "alpha": [1]}}


def _spec(env: EnvironmentSpec = ORIN) -> EngineSpec:
    prof = shape_profiles(IO_RT, min_hw=(256, 256), opt_hw=(720, 1280), max_hw=(1080, 1920), batch=1, multiple=4)
    return EngineSpec(env, "int8", True, prof, "model.int8.qdq.onnx", "ab" * 32, builder={"opt_level": 3})


def test_shape_profiles_round_to_multiple_and_fix_state() -> None:
    p = shape_profiles(IO_RT, min_hw=(250, 250), opt_hw=(720, 1280), max_hw=(1080, 1920), batch=2, multiple=16)
    assert p["input"] == ((2, 3, 256, 256), (2, 3, 720, 1280), (2, 3, 1088, 1920))
    assert p["state"] == ((2, 6, 128, 128),) * 3
    assert p["alpha"] == ((1,),) * 3


def test_shape_profiles_reject_other_dynamic_inputs() -> None:
    with pytest.raises(ConfigError, match="dynamic dims"):
        shape_profiles({"inputs": {"x": ["n", "c"]}}, min_hw=(1, 1), opt_hw=(1, 1), max_hw=(1, 1), batch=1, multiple=1)


def test_qdq_graph_inputs_match_the_engine_profile(exported, tiny_weights) -> None:
    from lle.export.onnx_export import onnx_io

    p = shape_profiles(onnx_io(exported["realtime"][0]), min_hw=(64, 64), opt_hw=(720, 1280), max_hw=(1088, 1920),
                       batch=1, multiple=4)
    assert set(p) == {"input", "state", "alpha"} and p["state"][0] == (1, 5, 32, 32)


def test_trtexec_strongly_typed_and_legacy_dla() -> None:
    prof = _spec().profiles
    cmd = trtexec_command(Path("out/model.int8.qdq.onnx"), Path("out/model.int8.plan"), prof, strongly_typed=True,
                          precision="int8", workspace_mib=1024, opt_level=3, timing_cache=Path("out/timing.cache"))
    assert cmd.startswith("trtexec --onnx=out/model.int8.qdq.onnx --saveEngine=out/model.int8.plan")
    assert "--stronglyTyped" in cmd and "--int8" not in cmd and "--fp16" not in cmd
    assert "--minShapes=input:1x3x256x256,state:1x6x128x128,alpha:1" in cmd
    assert "--maxShapes=input:1x3x1080x1920" in cmd and "--memPoolSize=workspace:1024M" in cmd
    assert "--builderOptimizationLevel=3" in cmd and "--timingCacheFile=out/timing.cache" in cmd
    legacy = trtexec_command(Path("m.onnx"), Path("m.plan"), prof, strongly_typed=False, precision="int8",
                             workspace_mib=512, opt_level=5, timing_cache=None, dla_core=0,
                             calib_cache=Path("calib-ab.cache"))
    assert "--fp16 --int8 --calib=calib-ab.cache --useDLACore=0 --allowGPUFallback" in legacy
    assert "--stronglyTyped" not in legacy


def test_legacy_gate() -> None:
    assert legacy_path_allowed("10.3.0") and legacy_path_allowed("10.13.0.35")
    assert not legacy_path_allowed("11.0.0") and not legacy_path_allowed("9.0") and not legacy_path_allowed("x")


def test_sidecar_round_trip_and_match(tmp_path) -> None:
    from lle.export.manifest import write_manifest

    plan = tmp_path / "model.int8.plan"
    plan.write_bytes(b"plan")
    write_manifest(plan, engine=_spec().to_dict())
    spec = read_sidecar(plan)
    assert spec == _spec()
    assert validate_sidecar(spec, EnvironmentSpec("10.3.0.26", "12.6", "Orin", "8.7")) == []


def test_sidecar_tensorrt_version_mismatch_is_clear() -> None:
    msg = r"built with TensorRT 10\.3\.0\.30 but this machine has TensorRT 10\.13"
    with pytest.raises(BackendError, match=msg) as e:
        validate_sidecar(_spec(), EnvironmentSpec("10.13.0.35", "12.6", "Orin", "8.7"), plan_name="model.int8.plan")
    assert "model.int8.plan" in str(e.value) and "rebuild" in (e.value.hint or "")


def test_sidecar_gpu_architecture_mismatch_is_clear() -> None:
    with pytest.raises(BackendError, match=r"built for Orin \(compute capability 8\.7\) but this GPU is NVIDIA H100"):
        validate_sidecar(_spec(), EnvironmentSpec("10.3.0.30", "12.6", "NVIDIA H100", "9.0"))


def test_sidecar_same_architecture_other_gpu_only_warns() -> None:
    warns = validate_sidecar(_spec(), EnvironmentSpec("10.3.0.30", "12.8", "Orin NX", "8.7"))
    assert any("Orin NX" in w for w in warns) and any("CUDA 12.8" in w for w in warns)


def test_missing_or_broken_sidecar(tmp_path) -> None:
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"x")
    with pytest.raises(BackendError, match="no sidecar m.plan.json"):
        read_sidecar(plan)
    (tmp_path / "m.plan.json").write_text(json.dumps({"engine": {"env": {"tensorrt": "10.3"}}}))
    with pytest.raises(BackendError, match="incomplete or malformed"):
        read_sidecar(plan)


def test_input_outside_profile_names_the_range() -> None:
    check_input_shape(_spec(), "input", (1, 3, 720, 1280))
    with pytest.raises(BackendError, match=r"shape \[1, 3, 2160, 3840\] is outside .* max \[1, 3, 1080, 1920\]"):
        check_input_shape(_spec(), "input", (1, 3, 2160, 3840))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_engine_step_without_tensorrt_names_the_extra(exported, export_cfg, tmp_path) -> None:
    from lle.export.trt_engine import to_engine

    with pytest.raises(MissingDependencyError) as e:
        to_engine(exported["quality"][0], tmp_path, export_cfg, None)
    assert "lle[tensorrt]" in (e.value.hint or "")
