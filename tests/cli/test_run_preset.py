"""`lle run PRESET`: the bundled weights run without an explicit export (exported once into a cache)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app


@pytest.fixture
def bundled(tiny_weights, tmp_path, monkeypatch) -> Path:
    import lle.presets

    wdir = tmp_path / "weights"
    wdir.mkdir()
    for p in ("realtime", "quality"):
        shutil.copy(tiny_weights[p], wdir / f"{p}.safetensors")
        shutil.copy(tiny_weights[p].with_suffix(".json"), wdir / f"{p}.json")
    monkeypatch.setattr(lle.presets, "WEIGHTS_DIR", wdir)
    monkeypatch.setenv("LLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # so "realtime" is not a file name here
    return wdir


def _frames(tmp_path: Path) -> Path:
    import cv2

    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"f{i}.png"), np.full((21, 34, 3), 20 + 30 * i, np.uint8))
    return src


def test_preset_name_runs_through_a_cached_onnx_export(bundled, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    src = _frames(tmp_path)
    r = CliRunner().invoke(app, ["run", "realtime", "--source", str(src), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f0.png", "f1.png", "f2.png"]
    cached = list((tmp_path / "cache").glob("realtime-*-uint8/model.onnx"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    r = CliRunner().invoke(app, ["run", "realtime", "--source", str(src), "-o", str(tmp_path / "out2")])
    assert r.exit_code == 0, r.output
    assert cached[0].stat().st_mtime_ns == mtime  # reused, not exported again


def test_preset_name_with_torch_backend_and_same_result(bundled, tmp_path) -> None:
    import cv2

    src = _frames(tmp_path)
    for backend in ("torch", "onnxruntime"):
        r = CliRunner().invoke(app, ["run", "realtime", "--backend", backend, "--source", str(src),
                                     "-o", str(tmp_path / backend)])
        assert r.exit_code == 0, r.output
    a = cv2.imread(str(tmp_path / "torch" / "f1.png")).astype(int)
    b = cv2.imread(str(tmp_path / "onnxruntime" / "f1.png")).astype(int)
    assert np.abs(a - b).max() <= 1


def test_unknown_name_is_still_a_missing_file(bundled, tmp_path) -> None:
    r = CliRunner().invoke(app, ["run", "nightvision", "--source", str(_frames(tmp_path))])
    assert r.exit_code == 1
    assert "nightvision" in r.output


def test_a_preset_name_on_a_remote_backend_is_the_server_model_name() -> None:
    from pathlib import Path

    from lle.presets import resolve_model

    assert resolve_model("realtime", "triton") == (Path("realtime"), "triton", {})
