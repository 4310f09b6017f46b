"""lle.bench building blocks: timing, frames, PSNR, artifacts lookup, report renderings. No wall-clock asserts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lle.bench.artifacts import find_artifact, resolve_artifact
from lle.bench.frames import is_black, make_frames, parse_size, postprocess, preprocess, psnr
from lle.bench.memory import PeakMemory
from lle.bench.report import BenchReport, BenchRow, collect_host, machine_slug, render_markdown, to_csv, to_json
from lle.bench.runner import BenchConfig, summarize_rows
from lle.bench.timing import StageTimer, measure, summarize
from lle.errors import ConfigError, ExportError


def test_measure_iters_and_seconds() -> None:
    calls = []
    lat = measure(lambda: calls.append(1), warmup=2, iters=5)
    assert len(lat) == 5 and len(calls) == 7 and all(v >= 0 for v in lat)
    lat = measure(lambda: None, warmup=0, seconds=0.01, min_iters=3)
    assert len(lat) >= 3
    with pytest.raises(ValueError, match="exactly one"):
        measure(lambda: None, iters=3, seconds=1.0)
    with pytest.raises(ValueError, match="positive"):
        measure(lambda: None, iters=0)


def test_summarize_is_ordered() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 100.0, 4.0])
    assert s.n == 6 and s.min_ms == 1.0 and s.max_ms == 100.0
    assert s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.fps == pytest.approx(1000 / s.p50_ms)
    with pytest.raises(ValueError, match="no latency"):
        summarize([])


def test_stage_timer() -> None:
    t = StageTimer(("pre", "infer"))
    for _ in range(3):
        with t("pre"):
            pass
    assert len(t.samples["pre"]) == 3 and math.isnan(t.medians()["infer"])
    t.reset()
    assert t.samples["pre"] == []
    with pytest.raises(KeyError, match="unknown stage"):
        t("post")


@pytest.mark.parametrize("text", ["12x", "x12", "12", "0x10", "-1x5", "axb", "12x12x3", ""])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size(text)


def test_frames_are_deterministic_dark_uint8() -> None:
    a, b = make_frames(40, 24, 2, seed=3), make_frames(40, 24, 2, seed=3)
    assert all(x.shape == (24, 40, 3) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(float(x.mean()) < 80 for x in a)  # dark, like a low-light capture
    syn = make_frames(40, 24, 1, photos=False)[0]
    assert syn.shape == (24, 40, 3)


def test_pre_post_roundtrip() -> None:
    frames = make_frames(30, 18, 2, photos=False)
    x, hw = preprocess(frames, 16)
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32 and hw == (18, 30)
    assert 0.0 <= x.min() and x.max() <= 1.0
    back = postprocess(x, hw)
    assert back.shape == (2, 18, 30, 3) and np.array_equal(back[0], frames[0])


def test_psnr_and_black() -> None:
    a = np.full((8, 8, 3), 0.5, np.float32)
    assert psnr(a, a, data_range=1.0) == 100.0
    assert psnr(a + 0.1, a, data_range=1.0) == pytest.approx(20.0, abs=1e-3)
    assert math.isnan(psnr(np.full_like(a, np.nan), a, data_range=1.0))
    assert is_black(np.zeros_like(a), a) and not is_black(a, a)


def test_peak_memory_keeps_the_peak_of_a_block() -> None:
    """200 MB held and freed inside the block: the peak shows it although the RSS at the end does not."""
    import time

    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    before = proc.memory_info().rss / 1e6
    with PeakMemory(interval=0.005) as mem:
        buf = np.ones(200_000_000, np.uint8)  # touched pages: resident
        deadline = time.monotonic() + 10
        while (mem.rss_mb or 0) < before + 150:  # wait for the sampler thread to see it
            assert time.monotonic() < deadline, "the sampler never saw the allocation"
            time.sleep(0.005)
        del buf
        mem._sample()  # one sample after the free: a tracker that kept the latest value would drop here
    after = proc.memory_info().rss / 1e6
    assert mem.rss_mb is not None and mem.rss_mb >= before + 150 and after < mem.rss_mb - 100
    assert mem.gpu_mb is None


def test_bench_config_rejects() -> None:
    with pytest.raises(ConfigError, match="nothing to benchmark"):
        BenchConfig()
    with pytest.raises(ConfigError, match="not both"):
        BenchConfig(weights=Path("w"), iters=3, seconds=1.0)
    with pytest.raises(ConfigError, match="batch"):
        BenchConfig(weights=Path("w"), batch=0)
    assert BenchConfig(weights=Path("w")).budget == {"iters": None, "seconds": 3.0}


def test_find_artifact_by_manifest_and_name(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "m_int8.onnx").write_bytes(b"x")
    (tmp_path / "ov").mkdir()
    (tmp_path / "ov" / "model.xml").write_text("<x/>")
    (tmp_path / "ov" / "q.xml").write_text("<x/>")
    manifest = {"artifact": "q.xml", "format": "openvino", "precision": "int8"}
    (tmp_path / "ov" / "q.xml.json").write_text(json.dumps(manifest))
    assert find_artifact(tmp_path, "onnxruntime", "fp32") == tmp_path / "m.onnx"
    assert find_artifact(tmp_path, "onnxruntime", "int8") == tmp_path / "m_int8.onnx"
    assert find_artifact(tmp_path, "openvino", "int8") == tmp_path / "ov" / "q.xml"
    assert find_artifact(tmp_path, "openvino", "fp16") == tmp_path / "ov" / "model.xml"  # fp32 IR + fp16 hint
    assert find_artifact(tmp_path, "tensorrt", "fp16") is None


def test_resolve_artifact_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown precision 'fp8'"):
        resolve_artifact(tmp_path / "w.safetensors", "onnxruntime", "fp8", artifacts=None, cache=tmp_path)
    with pytest.raises(ExportError, match="no onnxruntime fp32 artifact"):
        resolve_artifact(None, "onnxruntime", "fp32", artifacts=tmp_path, cache=tmp_path)


def _row(**kw: object) -> BenchRow:
    base = {"preset": "realtime", "backend": "onnxruntime", "precision": "fp32", "size": "64x48", "status": "ok",
            "p50_ms": 2.0, "p90_ms": 3.0, "p99_ms": 4.0, "mean_ms": 2.5, "fps": 500.0}
    return BenchRow(**{**base, **kw})  # type: ignore[arg-type]


def test_summary_speedup_and_renderings(tmp_path: Path) -> None:
    rows = [_row(backend="torch", kind="reference", fps=100.0), _row(), _row(precision="int8", status="accuracy",
            fps=900.0, reason="PSNR 20.0 dB < 30 dB"), _row(backend="tensorrt", size="-", status="error", fps=None,
            p50_ms=None, reason="tensorrt is not installed")]
    rows, summary = summarize_rows(rows)
    assert rows[1].speedup_vs_eager == pytest.approx(5.0)
    best = summary["best"]
    assert len(best) == 1 and best[0]["label"] == "onnxruntime/fp32" and best[0]["speedup"] == pytest.approx(5.0)
    report = BenchReport(collect_host("lle bench test"), {"preset": "realtime"}, rows, summary)
    data = json.loads(to_json(report))
    assert {"host", "settings", "summary", "rows"} <= data.keys()
    assert data["host"]["cores"] >= 1 and data["host"]["command"] == "lle bench test" and data["host"]["libraries"]
    assert [r["mark"] for r in data["rows"]] == ["✅", "✅", "❎", "❌"]
    lines = to_csv(report).splitlines()
    assert lines[0].startswith("mark,preset,backend") and len(lines) == 5
    md = render_markdown(report, plots=["x.png"])
    assert "| ❌ |" in md and "tensorrt is not installed" in md and "![x](x.png)" in md
    assert report.host.cpu in md and "lle bench test" in md


def test_machine_slug() -> None:
    assert machine_slug("Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", 8, []) == "intel-core-i7-1185g7-8c"
    gpu = ["GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-x)"]
    assert machine_slug("AMD EPYC", 2, gpu) == "amd-epyc-2c-nvidia-h100-80gb-hbm3"


def test_on_the_fly_int8_export_relaxes_the_gate_but_keeps_the_mixed_precision_target() -> None:
    from lle.bench.artifacts import ExportSettings, bench_export_config
    from lle.export.config import ExportConfig

    default = ExportConfig()
    cfg = bench_export_config("onnx-int8", "onnx-int8", "int8", ExportSettings(calib=None, calib_n=8))
    assert cfg.min_psnr == 0.0 and cfg.calibration.mixed and cfg.calibration.n == 8
    # The search aims at min_psnr + margin_db: the same dB a default export aims for.
    assert cfg.min_psnr + cfg.calibration.margin_db == default.min_psnr + default.calibration.margin_db
