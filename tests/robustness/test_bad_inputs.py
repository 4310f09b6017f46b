"""The bad-input matrix: every command that reads user files, against every kind of bad or unusual file.

Each case either works (and the output is checked) or fails with exit code != 0, exactly one ``error:`` line naming
the input (plus a hint), no traceback, the input untouched and no temporary or empty file left in the output folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.robustness.conftest import Outcome, assert_nothing_partial, assert_one_line_error, invoke, snapshot
from tests.robustness.files import FILES, make_file

pytestmark = pytest.mark.usefixtures("quiet_root")

IMAGE_CASES = [c for c, (s, _) in FILES.items() if s not in {".mp4", ".onnx", ".safetensors"}]
VIDEO_CASES = [c for c, (s, _) in FILES.items() if s == ".mp4"]
MODEL_CASES = [c for c, (s, _) in FILES.items() if s in {".onnx", ".safetensors"}]
BROKEN = {c for c in FILES if c.split()[0] in {"zero-byte", "truncated", "garbage"}}

Command = Callable[[Path, Path, dict[str, Path]], list[object]]


def _enhance(f: Path, out: Path, w: dict[str, Path]) -> list[object]:
    return ["enhance", f, "-o", out, "--weights", w["quality"]]


def _run(f: Path, out: Path, w: dict[str, Path]) -> list[object]:
    return ["run", w["realtime"], "--source", f, "-o", out / ("o.mp4" if f.suffix == ".mp4" else "frames")]


def _calib(f: Path, out: Path, w: dict[str, Path]) -> list[object]:
    return ["calib", "build", f.parent, "-o", out / "calib", "--n", "2", "--max-side", "64"]


def _eval(f: Path, out: Path, w: dict[str, Path]) -> list[object]:
    low, ref = f.parent / "low", f.parent / "ref"
    for d in (low, ref):
        d.mkdir(exist_ok=True)
        shutil.copy(f, d / f.name)
    return ["eval", "--pairs", low, ref, "--weights", w["quality"], "-o", out / "eval", "--no-baselines",
            "--sheet-rows", "1"]  # fmt: skip


def _bench(f: Path, out: Path, w: dict[str, Path]) -> list[object]:
    return ["bench", "--weights", w["realtime"], "--backends", "torch", "--precisions", "fp32", "--sizes", "32x24",
            "--iters", "1", "--warmup", "0", "--no-references", "--no-plots", "--quality-frames", "1",
            "--frames", f.parent, "-o", out / "bench"]  # fmt: skip


IMAGE_COMMANDS: dict[str, Command] = {"enhance": _enhance, "run": _run, "calib": _calib, "eval": _eval}
# What each command does with files it does not take: a clear refusal (an error line naming the file or folder).
REFUSED = {
    ("enhance", "animated GIF"),  # .gif is not an image suffix: "not an image file"
    ("calib", "animated GIF"),
    ("eval", "animated GIF"),
}


def _check(res: Outcome, f: Path, before: dict[str, str], out: Path) -> None:
    assert f.exists() and snapshot(f.parent).get(f.name) == before[f.name], "the input was changed or deleted"
    assert_nothing_partial(out)
    if res.exit_code != 0:
        assert_one_line_error(res, f.name, str(f.parent))


def _case(tmp_path: Path, case: str) -> tuple[Path, Path, dict[str, str]]:
    src = tmp_path / "in"
    src.mkdir()
    f = make_file(src, case)
    return f, tmp_path / "out", snapshot(src)


@pytest.mark.parametrize("command", list(IMAGE_COMMANDS))
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_image_matrix(tmp_path: Path, tiny_weights: dict[str, Path], command: str, case: str) -> None:
    f, out, before = _case(tmp_path, case)
    res = invoke(*IMAGE_COMMANDS[command](f, out, tiny_weights))
    _check(res, f, before, out)
    if case in BROKEN or (command, case) in REFUSED:
        assert res.exit_code != 0, res.output
        assert snapshot(out) == {}, "an output was written for an input that failed"
        return
    assert res.exit_code == 0, res.output
    if command == "enhance":
        _check_enhanced(case, f, out / f.name)
    elif command == "run":
        frames = sorted((out / "frames").iterdir())
        assert frames and all(cv2.imread(str(p)) is not None for p in frames)


def _check_enhanced(case: str, src: Path, dst: Path) -> None:
    """Shape, planes and depth as the issue asks: alpha kept, grey stays grey, 16-bit stays 16-bit, EXIF applied."""
    raw = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert raw is not None, dst
    shown = cv2.imread(str(src), cv2.IMREAD_COLOR)  # what a viewer shows (EXIF orientation applied)
    assert raw.shape[:2] == shown.shape[:2]
    planes = 1 if raw.ndim == 2 else raw.shape[2]
    expected = {"RGBA": 4, "greyscale": 1}.get(case, 3)
    assert planes == expected, f"{case}: {planes} planes"
    assert raw.dtype == (np.uint16 if case == "16-bit" else np.uint8)
    if case == "RGBA":
        np.testing.assert_array_equal(raw[..., 3], cv2.imread(str(src), cv2.IMREAD_UNCHANGED)[..., 3])
    if case == "EXIF-rotated":
        assert raw.shape[:2] == (16, 8)  # stored 8x16, displayed (and written) upright


BENCH_CASES = ["zero-byte png", "garbage jpg", "truncated png", "animated GIF", "1x1", "RGBA", "16-bit", "CMYK"]


@pytest.mark.parametrize("case", BENCH_CASES)
def test_bench_frames_matrix(tmp_path: Path, tiny_weights: dict[str, Path], case: str) -> None:
    f, out, before = _case(tmp_path, case)
    res = invoke(*_bench(f, out, tiny_weights))
    _check(res, f, before, out)
    assert (res.exit_code != 0) == (case in BROKEN or case == "animated GIF"), res.output


def test_calib_build_skips_an_unreadable_image_and_keeps_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"ok{i}.png"), np.full((16, 16, 3), 40 + i, np.uint8))
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    res = invoke("calib", "build", src, "-o", tmp_path / "calib", "--n", "4", "--max-side", "64")
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "calib").glob("*.jpg"))) == 3


@pytest.mark.parametrize("command", ["run", "calib"])
@pytest.mark.parametrize("case", VIDEO_CASES)
def test_broken_video_matrix(tmp_path: Path, tiny_weights: dict[str, Path], command: str, case: str) -> None:
    f, out, before = _case(tmp_path, case)
    cmd = _run if command == "run" else _calib
    res = invoke(*cmd(f, out, tiny_weights))
    _check(res, f, before, out)
    assert res.exit_code != 0
    assert not (out / "o.mp4").exists()


def _model_commands(f: Path, out: Path, img: Path) -> dict[str, list[object]]:
    cmds: dict[str, list[object]] = {"run": ["run", f, "--source", img, "-o", out / "o.png"]}
    if f.suffix == ".safetensors":
        cmds["enhance"] = ["enhance", img, "-o", out, "--weights", f]
        cmds["export"] = ["export", "--weights", f, "-o", out, "--format", "onnx"]
        cmds["eval"] = ["eval", "--pairs", img.parent, img.parent, "--weights", f, "-o", out]
    return cmds


@pytest.mark.parametrize("case", MODEL_CASES)
def test_broken_model_matrix(tmp_path: Path, case: str) -> None:
    f, out, before = _case(tmp_path, case)
    img = make_file(tmp_path / "in", "1xN", "frame")
    before = snapshot(f.parent)
    for name in ("run", "enhance", "export", "eval"):
        cmd = _model_commands(f, out / name, img).get(name)
        if cmd is None:
            continue
        res = invoke(*cmd)
        _check(res, f, before, out / name)
        assert res.exit_code != 0, f"{name}: {res.output}"
        assert snapshot(out / name) == {}, name
        if f.suffix == ".onnx":  # the fix is named, not only the failure
            assert "hint:" in res.output and "lle export" in res.output, res.output


def test_failed_export_leaves_nothing(tmp_path: Path) -> None:
    f, out, _ = _case(tmp_path, "garbage safetensors")
    assert invoke("export", "--weights", f, "-o", out, "--format", "onnx").exit_code != 0
    assert snapshot(out) == {}


def test_quality_weights_where_realtime_is_expected(tmp_path: Path, tiny_weights: dict[str, Path]) -> None:
    img = make_file(tmp_path, "1xN")
    out = tmp_path / "out"
    res = invoke("enhance", img, "-o", out, "--preset", "realtime", "--weights", tiny_weights["quality"])
    text = assert_one_line_error(res, tiny_weights["quality"].name)
    assert "quality weights but --preset realtime" in text and "drop --preset" in text
    assert snapshot(out) == {}
    # Without --preset the weights decide, as with `lle run WEIGHTS`.
    assert invoke("enhance", img, "-o", out, "--weights", tiny_weights["realtime"]).exit_code == 0


def test_onnx_of_another_model(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 10])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])  # fmt: skip
    m.ir_version = 8
    other = tmp_path / "classifier.onnx"
    onnx.save(m, str(other))
    img = make_file(tmp_path, "1xN")
    res = invoke("run", other, "--source", img, "-o", tmp_path / "out" / "o.png")
    text = assert_one_line_error(res, other.name)
    assert "not an lle model" in text and "lle export" in text
    assert snapshot(tmp_path / "out") == {}


def test_engine_sidecar_from_another_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TensorRT engine built on another GPU/TensorRT is refused before deserialisation, naming both."""
    import importlib.machinery
    import sys
    import types

    from lle.backends import trt_backend
    from lle.export.manifest import write_manifest
    from lle.export.trt_meta import EngineSpec, EnvironmentSpec

    plan = tmp_path / "model.fp16.plan"
    plan.write_bytes(b"not deserialised: the sidecar check comes first")
    spec = EngineSpec(EnvironmentSpec("10.3.0.30", "12.6", "Orin", "8.7"), "fp16", True,
                      {"input": ((1, 3, 64, 64), (1, 3, 720, 1280), (1, 3, 1080, 1920))}, "model.onnx", "0" * 64)
    write_manifest(plan, engine=spec.to_dict())
    fake = types.ModuleType("tensorrt")
    fake.__version__ = "10.13.0.35"  # type: ignore[attr-defined]
    fake.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)

    class _Gpu:
        def device(self, index: int) -> tuple[str, str]:
            return "NVIDIA H100", "9.0"

        def runtime_version(self) -> str:
            return "12.8"

    cuda_name = "Cuda" if hasattr(trt_backend, "Cuda") else "_Cuda"
    monkeypatch.setattr(trt_backend, cuda_name, _Gpu)
    monkeypatch.setattr(trt_backend, "require", lambda name, extra=None: fake)
    img = make_file(tmp_path, "1xN")
    res = invoke("run", plan, "--source", img, "-o", tmp_path / "out" / "o.png")
    text = assert_one_line_error(res, plan.name)
    assert "10.3.0.30" in text and "rebuild" in text
    assert snapshot(tmp_path / "out") == {}
