"""``lle bench`` without ``--artifacts``: INT8 and FP16 rows export on the fly, and a second run reuses the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lle.cli.bench import register

app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:
    pass


runner = CliRunner()
CALIB = Path(__file__).resolve().parents[2] / "calibration_data" / "images"


@pytest.mark.parametrize(("backend", "precision"), [("onnxruntime", "int8"),
                                                    pytest.param("openvino", "fp16", marks=pytest.mark.openvino)])
def test_bench_exports_int8_and_fp16_then_reuses_the_cache(tiny_weights, tmp_path, monkeypatch, backend,
                                                          precision) -> None:
    pytest.importorskip(backend)
    pytest.importorskip("onnx")
    cache = tmp_path / "cache"

    def bench(out: Path):
        return runner.invoke(app, ["bench", "--weights", str(tiny_weights["realtime"]), "--backends", backend,
                                   "--precisions", precision, "--sizes", "64x48", "--iters", "2", "--warmup", "0",
                                   "--quality-frames", "1", "--out", str(out), "--no-plots", "--calib", str(CALIB),
                                   "--cache-dir", str(cache)])  # fmt: skip

    def rows(out: Path) -> list[dict]:
        data = json.loads((out / "bench-realtime.json").read_text())
        return [r for r in data["rows"] if r["backend"] == backend and r["precision"] == precision]

    first = bench(tmp_path / "a")
    assert first.exit_code == 0, first.output
    got = rows(tmp_path / "a")
    assert got and all(r["status"] == "ok" for r in got), got
    assert any(cache.rglob(".done"))

    import lle.export

    def no_export(*a, **k):
        raise AssertionError("exported again instead of reusing the cache")

    monkeypatch.setattr(lle.export, "export_model", no_export)
    second = bench(tmp_path / "b")
    assert second.exit_code == 0, second.output
    again = rows(tmp_path / "b")
    assert again and all(r["status"] == "ok" for r in again), again
