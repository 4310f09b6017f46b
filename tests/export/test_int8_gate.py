"""The OpenVINO INT8 gate: NNCF's own IR is measured, the float set grows on a miss, only a passing IR is written.

The unit tests replace NNCF and the held-out measurement with scripted stand-ins (seconds, tiny models); the slow
ones export the shipped weights with the README's INT8 commands on a few calibration images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lle.errors import ParityError

pytest.importorskip("onnxruntime")

CALIB_DIR = Path(__file__).resolve().parents[2] / "calibration_data" / "images"


def _src(exported, preset: str, tmp_path: Path) -> Path:
    src, _ = exported[preset]
    work = tmp_path / preset
    shutil.copytree(src.parent, work)
    return work / src.name


def _leftovers(folder: Path) -> list[str]:
    """INT8 IR files in ``folder``: the artifact and any hidden temporary IR."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name in ("model.int8.xml", "model.int8.bin") or p.name.startswith(".model.int8"))


class _Script:
    """Stand-ins for NNCF and the held-out check: attempt i "reaches" ``psnrs[i]`` dB.

    Every quantized model is the float IR tagged with its attempt number, so the saved file tells which attempt
    it came from; the measured files' sha256 are kept to compare with the manifest.
    """

    def __init__(self, psnrs: list[float]) -> None:
        self.psnrs = psnrs
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.measured: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import lle.export.openvino_ir as oi

        monkeypatch.setattr(oi, "_nncf_quantizer", self.quantizer)
        monkeypatch.setattr(oi, "_measure", self.measure)

    def quantizer(self, model, dataset, *, ignored_types, preset, **kwargs):
        def quantize(names):
            self.calls.append((str(preset).rsplit(".", 1)[-1].lower(), tuple(names)))
            out = model.clone()
            out.set_rt_info(str(len(self.calls)), ["lle_test", "attempt"])
            return out

        return quantize

    def measure(self, path: Path, cfg, xs, ys, kind: str, threshold: float):
        from lle.export.manifest import ParityResult

        self.measured.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
        got = self.psnrs[len(self.measured) - 1]
        return ParityResult("psnr", 0.01, 0.1, got, threshold, got >= threshold, len(xs))


def _cfg(export_cfg, **openvino):
    return dataclasses.replace(export_cfg, openvino=dataclasses.replace(export_cfg.openvino, **openvino))


@pytest.mark.openvino
def test_a_miss_grows_the_float_set_and_the_passing_attempt_is_saved(exported, export_cfg, tmp_path,
                                                                     monkeypatch) -> None:
    """All-INT8 met the search's target in onnxruntime (no sensitivity table): it is measured for the second try."""
    pytest.importorskip("nncf")
    import openvino as ov

    import lle.export.mixed_precision as mp
    from lle.export.manifest import read_manifest
    from lle.export.openvino_ir import to_ov_int8
    from lle.host import cpu_features

    src = _src(exported, "quality", tmp_path)
    calib = exported["quality"][1]
    cfg = _cfg(export_cfg, preset="performance")  # no preset switch: the second try is the bigger float set
    script = _Script([30.0, 40.0])
    script.install(monkeypatch)
    path = to_ov_int8(src, src.parent, cfg, calib)

    plan = mp.mixed_plan(src, src.parent, cfg, calib)
    assert plan.float_layers == () and set(plan.sensitivity) == set(mp.float_order(plan))  # measured, then cached
    k = mp.float_sizes(0, mp.max_float_convs(cfg, plan.n_convs), 4)[1]
    assert [len(names) for _, names in script.calls] == [0, k] and k >= 1
    man = read_manifest(path)
    assert [(a["preset"], a["float_convs"], a["psnr_db"], a["passed"]) for a in man["int8_attempts"]] == [
        ("performance", 0, 30.0, False), ("performance", k, 40.0, True)]
    assert man["parity"]["psnr_db"] == 40.0 and man["parity"]["passed"]
    assert man["mixed_precision"]["float_layers"] == list(mp.float_order(plan)[:k])
    assert man["mixed_precision"]["plan_float_layers"] == []
    assert man["host"]["isa"] == cpu_features()[1] and man["host"]["openvino_capabilities"]
    # the saved IR is the second attempt's, byte for byte
    files = (path, path.with_suffix(".bin"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == script.measured[1]
    assert man["sha256"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert ov.Core().read_model(str(path)).get_rt_info(["lle_test", "attempt"]).astype(str) == "2"
    assert _leftovers(src.parent) == ["model.int8.bin", "model.int8.xml"]


@pytest.mark.openvino
def test_mixed_preset_misses_then_symmetric_activations_are_tried(exported, export_cfg, tmp_path,
                                                                  monkeypatch) -> None:
    """The plan was measured with symmetric activation ranges: NNCF's "performance" preset is the next try."""
    pytest.importorskip("nncf")
    from lle.export.manifest import read_manifest
    from lle.export.openvino_ir import to_ov_int8

    src = _src(exported, "realtime", tmp_path)
    script = _Script([31.0, 36.0])
    script.install(monkeypatch)
    path = to_ov_int8(src, src.parent, _cfg(export_cfg, preset="mixed"), exported["realtime"][1])
    assert [preset for preset, _ in script.calls] == ["mixed", "performance"]
    assert script.calls[0][1] == script.calls[1][1]  # same float set
    man = read_manifest(path)
    assert man["calibration"]["preset"] == "performance" and man["parity"]["psnr_db"] == 36.0
    assert [a["passed"] for a in man["int8_attempts"]] == [False, True]


@pytest.mark.openvino
def test_every_attempt_missing_is_one_parity_error_and_writes_nothing(exported, export_cfg, tmp_path,
                                                                      monkeypatch) -> None:
    pytest.importorskip("nncf")
    import lle.export.mixed_precision as mp
    from lle.export.openvino_ir import INT8_ATTEMPTS, to_ov_int8

    src = _src(exported, "quality", tmp_path)
    calib = exported["quality"][1]
    script = _Script([30.0, 31.5, 33.25, 32.0])
    script.install(monkeypatch)
    with pytest.raises(ParityError) as info:
        to_ov_int8(src, src.parent, export_cfg, calib)
    msg = str(info.value)
    assert "\n" not in msg and len(script.calls) == INT8_ATTEMPTS == 4
    assert msg.startswith("model.int8.xml not written: NNCF INT8 reached at best 33.25 dB on held-out images")
    assert "expected PSNR >= 35 dB; tried 4 time(s) with 0-" in msg
    plan = mp.mixed_plan(src, src.parent, export_cfg, calib)
    sizes = [len(names) for _, names in script.calls]
    assert sizes[:2] == [0, 0] and sizes[1] < sizes[2] < sizes[3] == mp.max_float_convs(export_cfg, plan.n_convs)
    for (preset, names), db in zip(script.calls, script.psnrs, strict=True):
        assert f"{preset} {len(names)} float {db:.2f} dB" in msg
    assert info.value.hint and "max_float" in info.value.hint
    assert _leftovers(src.parent) == []
    assert not (src.parent / "model.int8.xml.json").exists()


@pytest.mark.openvino
def test_a_hopeless_plan_fails_before_nncf(exported, export_cfg, tmp_path, monkeypatch) -> None:
    pytest.importorskip("nncf")
    import lle.export.mixed_precision as mp
    from lle.export.openvino_ir import to_ov_int8

    src = _src(exported, "quality", tmp_path)
    plan = mp.MixedPlan(float_layers=("a", "b"), n_convs=10, int8_psnr=18.0, mixed_psnr=24.5, mixed_worst_psnr=20.0,
                        target_db=40.0)
    monkeypatch.setattr(mp, "mixed_plan", lambda *a, **k: plan)
    script = _Script([])
    script.install(monkeypatch)
    t0 = time.perf_counter()
    with pytest.raises(ParityError, match=r"at best 24\.50 dB on probe images with 2 of 10 convolutions float "
                                          r"\(at most 5\), more than 6 dB under .* NNCF was not run"):
        to_ov_int8(src, src.parent, export_cfg, exported["quality"][1])
    assert time.perf_counter() - t0 < 10 and script.calls == []
    lenient = dataclasses.replace(export_cfg, calibration=dataclasses.replace(export_cfg.calibration,
                                                                              give_up_db=float("inf")))
    script = _Script([40.0])
    script.install(monkeypatch)
    monkeypatch.setattr("lle.export.openvino_ir.ov_conv_names", lambda model, src, names: list(names))
    assert to_ov_int8(src, src.parent, lenient, exported["quality"][1]).is_file()  # give_up_db = inf: NNCF runs


@pytest.mark.openvino
def test_reused_statistics_give_what_nncf_quantize_gives(exported, tmp_path) -> None:
    """A retry reruns only NNCF's last pipeline step on the first run's statistics; the IR is the same as a fresh
    ``nncf.quantize`` with that float set, and the first set again after the second is unchanged."""
    nncf = pytest.importorskip("nncf")
    import onnx
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from lle.export import openvino_ir as oi
    from lle.export.calibration import to_nncf_dataset
    from lle.export.onnx_export import graph_feed
    from lle.export.ort_quant import conv_names

    src, calib = exported["quality"]
    model = oi._convert(src)
    types = sorted({op.get_type_name() for op in model.get_ops()} - oi.OV_QUANT_OPS)
    kwargs = {"preset": nncf.QuantizationPreset.MIXED, "subset_size": len(calib),
              "advanced_parameters": AdvancedQuantizationParameters(
                  activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)}
    dataset = to_nncf_dataset(calib, graph_feed(src))
    convs = conv_names(onnx.load(str(src)))
    small, big = (oi.ov_conv_names(model, src, convs[:k]) for k in (1, 5))
    quantize = oi._nncf_quantizer(model, dataset, ignored_types=types, **kwargs)
    assert isinstance(quantize, oi._ReusedStatistics)

    def fq(m) -> list[tuple[str, tuple[float, ...]]]:
        return sorted((op.get_friendly_name(), tuple(float(v) for i in range(1, 5)
                                                     for v in np.ravel(op.input_value(i).get_node().get_data())))
                      for op in m.get_ops() if op.get_type_name() == "FakeQuantize")

    got = {"small": fq(quantize(small)), "big": fq(quantize(big)), "small again": fq(quantize(small))}
    assert len(got["big"]) < len(got["small"]) and got["small again"] == got["small"]
    for key, names in (("small", small), ("big", big)):
        fresh = nncf.quantize(oi._convert(src), dataset, ignored_scope=nncf.IgnoredScope(
            names=names, types=types, validate=False), **kwargs)
        assert fq(fresh) == got[key], key


# --- the shipped weights through the README's INT8 commands, on a few calibration images ---------------------------


def _images(tmp_path: Path, n: int) -> Path:
    """The first ``n`` images of calibration_data/images (4 of them are held out for the PSNR check)."""
    folder = tmp_path / "calib"
    folder.mkdir()
    for p in sorted(CALIB_DIR.iterdir())[:n]:
        shutil.copy(p, folder)
    return folder


def _export(args: list[str]) -> tuple[int, str, float]:
    from typer.testing import CliRunner

    from lle.cli.app import app

    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["export", *args])
    return res.exit_code, res.output, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.openvino
@pytest.mark.parametrize("preset", ["realtime", "quality"])
def test_shipped_weights_export_to_onnx_int8_and_openvino_int8(preset, tmp_path) -> None:
    """``lle export --format onnx-int8`` then ``--format openvino --precision int8`` into one folder (the second
    reuses the mixed-precision plan), 12 calibration + 4 held-out images at 256x384."""
    pytest.importorskip("nncf")
    from lle.export.manifest import read_manifest

    calib, out = _images(tmp_path, 16), tmp_path / "out"
    common = ["--preset", preset, "--calib", str(calib), "--calib-n", "12", "--opt-hw", "256x384", "-o", str(out)]
    for fmt, artifact in ((["--format", "onnx-int8"], "model.int8.qdq.onnx"),
                          (["--format", "openvino", "--precision", "int8"], "model.int8.xml")):
        code, output, seconds = _export([*fmt, *common])
        assert code == 0, output
        man = read_manifest(out / artifact)
        print(f"\n{preset} {artifact}: {man['parity']['psnr_db']:.2f} dB in {seconds:.1f} s")
        assert man["parity"]["passed"] and man["parity"]["psnr_db"] >= 35.0
        assert man["parity"]["n_inputs"] == 4 and man["calibration"]["hw"] == [256, 384]
    man = read_manifest(out / "model.int8.xml")
    assert man["int8_attempts"][-1]["passed"] and man["host"]["openvino_device"] == "CPU"
    assert man["calibration"]["preset"] in ("mixed", "performance")


@pytest.mark.slow
@pytest.mark.openvino
def test_quality_openvino_int8_on_four_calibration_images_passes_or_says_what_was_tried(tmp_path) -> None:
    """The user report at a small scale: on 4 calibration images the onnxruntime plan holds but NNCF's first IR
    misses 35 dB (31.5 dB here, mixed preset), on some CPUs by more. Either a later attempt passes, or the command
    fails with one line naming the attempts and writes no ``model.int8.xml``."""
    pytest.importorskip("nncf")
    from lle.export.manifest import read_manifest

    calib, out = _images(tmp_path, 8), tmp_path / "out"
    code, output, seconds = _export(["--preset", "quality", "--format", "openvino", "--precision", "int8", "--calib",
                                     str(calib), "--calib-n", "4", "--opt-hw", "256x384", "-o", str(out)])
    print(f"\nquality openvino int8 on 4 calibration images: exit {code} in {seconds:.1f} s")
    if code == 0:
        man = read_manifest(out / "model.int8.xml")
        print("attempts:", [(a["preset"], a["float_convs"], round(a["psnr_db"], 2)) for a in man["int8_attempts"]])
        assert man["parity"]["passed"] and all(not a["passed"] for a in man["int8_attempts"][:-1])
    else:
        lines = [ln for ln in output.splitlines() if ln.strip()]
        print(lines[0])
        assert lines[0].startswith("error: model.int8.xml not written: NNCF INT8 reached at best")
        assert "tried" in lines[0] and not (out / "model.int8.xml").exists()
        assert _leftovers(out) == []
