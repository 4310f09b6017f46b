"""A tiny end-to-end bench (2 tiny sizes, a few iterations, tiny weights) over every installed backend."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lle.bench import BenchConfig, BenchReport, run_bench, write_reports

SIZES = ((64, 48), (72, 40))
BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


@pytest.fixture(scope="module")
def report(tiny_weights: dict[str, Path], tiny_artifacts: dict[str, Path], bench_cache: Path) -> BenchReport:
    pytest.importorskip("torch")
    cfg = BenchConfig(weights=tiny_weights["realtime"], artifacts=tiny_artifacts["realtime"],
                      backends=(*BACKENDS, "nosuch"), precisions=("fp32", "fp8"),
                      sizes=SIZES, iters=3, warmup=1, quality_frames=2, photos=False,
                      cache_dir=bench_cache)  # fmt: skip
    return run_bench(cfg, command="pytest")


def _rows(report: BenchReport, backend: str, precision: str = "fp32") -> list:
    return [r for r in report.rows if r.backend == backend and r.precision == precision]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if _installed(b)])
def test_installed_backend_runs_and_matches(report: BenchReport, backend: str) -> None:
    rows = _rows(report, backend)
    assert [r.size for r in rows] == ["64x48", "72x40"], [r.reason for r in rows]
    for r in rows:
        assert r.status == "ok", r.reason
        assert r.mark == "✅" and r.iters == 3 and r.batch == 1
        assert 0 < r.p50_ms <= r.p90_ms <= r.p99_ms and r.mean_ms > 0 and r.fps > 0
        assert r.pre_ms > 0 and r.infer_ms > 0 and r.post_ms > 0
        assert r.psnr_db >= 50 and r.min_psnr_db == 50
        assert r.artifact and r.artifact_mb > 0 and r.runtime_version
        if backend != "torch":
            assert r.artifact.endswith("model.onnx")  # taken from the artifacts folder, not re-exported
        if importlib.util.find_spec("psutil"):
            assert r.peak_rss_mb > 0
        assert r.speedup_vs_eager > 0


def test_reference_rows(report: BenchReport) -> None:
    floor = [r for r in report.rows if r.backend == "resize+copy"]
    assert [r.size for r in floor] == ["64x48", "72x40"] and all(r.kind == "reference" and r.fps > 0 for r in floor)
    eager = _rows(report, "torch")
    assert all(r.kind == "reference" and r.speedup_vs_eager == pytest.approx(1.0) for r in eager)
    assert {b["size"] for b in report.summary["best"]} == {"64x48", "72x40"}


def test_failing_combinations_are_error_rows(report: BenchReport) -> None:
    bogus = [r for r in report.rows if r.precision == "fp8"]
    assert bogus and all(r.status == "error" and r.mark == "❌" for r in bogus)
    assert any("unknown precision 'fp8'" in r.reason for r in bogus)
    unknown = [r for r in report.rows if r.backend == "nosuch"]
    assert unknown and all(r.status == "error" and "unknown backend" in r.reason for r in unknown)
    if not _installed("tensorrt"):
        trt = _rows(report, "tensorrt")
        assert len(trt) == 1 and trt[0].status == "error" and "tensorrt" in trt[0].reason and trt[0].p50_ms is None


def test_reports_written(report: BenchReport, tmp_path: Path) -> None:
    written = write_reports(report, tmp_path / "out", stem="tiny")
    names = {p.name for p in written}
    assert {"tiny.json", "tiny.csv", "tiny.md"} <= names
    if importlib.util.find_spec("matplotlib"):
        assert {"tiny_latency.png", "tiny_fps.png"} <= names
        assert (tmp_path / "out" / "tiny_fps.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert len(data["rows"]) == len(report.rows) and data["settings"]["sizes"] == "64x48,72x40"
    assert not list((tmp_path / "out").glob(".*"))  # atomic writes leave no temp files


def test_accuracy_failure_is_flagged(tiny_weights: dict[str, Path]) -> None:
    pytest.importorskip("torch")
    cfg = BenchConfig(weights=tiny_weights["quality"], backends=("torch",), precisions=("bf16",), sizes=((48, 32),),
                      iters=2, warmup=0, quality_frames=1, photos=False, references=True,
                      min_psnr={"fp32": 50.0, "bf16": 99.0})  # fmt: skip
    rows = _rows(run_bench(cfg), "torch", "bf16")
    assert len(rows) == 1 and rows[0].status == "accuracy" and rows[0].mark == "❎"
    assert "< 99 dB" in rows[0].reason and rows[0].p50_ms > 0


def test_video_mode(tiny_weights: dict[str, Path], tiny_artifacts: dict[str, Path], tmp_path: Path,
                    bench_cache: Path) -> None:
    pytest.importorskip("torch")
    src = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(6):
        vw.write(np.full((48, 64, 3), 10 + 5 * i, np.uint8))
    vw.release()
    cfg = BenchConfig(weights=tiny_weights["realtime"], backends=("torch", "onnxruntime"), precisions=("fp32",),
                      sizes=(), video=src, iters=1, cache_dir=bench_cache,
                      artifacts=tiny_artifacts["realtime"])  # fmt: skip
    rep = run_bench(cfg)
    rows = [r for r in rep.rows if r.kind == "video"]
    assert rows and all(r.size == "64x48" for r in rows)
    ok = [r for r in rows if r.status == "ok"]
    assert ok and all(r.fps > 0 and r.iters == 6 and r.infer_ms > 0 for r in ok), [r.reason for r in rows]
