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


def test_preset_name_on_a_video_runs_the_i420_graph(bundled, tmp_path) -> None:
    """Video sources get the I420 export (decoded planes straight in); torch runs the same graph."""
    pytest.importorskip("onnxruntime")
    av = pytest.importorskip("av")
    from lle.presets import resolve_model

    path, backend, opts = resolve_model("realtime", "torch", video=True)
    assert backend == "torch" and opts == {"frames": "i420"}
    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        for i in range(5):
            f = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 15 + 5 * i, np.uint8), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    outs = {}
    for be in ("onnxruntime", "torch"):
        out = tmp_path / f"{be}.mp4"
        r = CliRunner().invoke(app, ["run", "realtime", "--backend", be, "--source", str(clip), "-o", str(out)])
        assert r.exit_code == 0, r.output
        with av.open(str(out)) as c:
            outs[be] = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    assert len(outs["torch"]) == len(outs["onnxruntime"]) == 5
    assert len(list((tmp_path / "cache").glob("realtime-*-i420/model.onnx"))) == 1
    diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(*outs.values(), strict=True))
    assert diff <= 3  # two encodes of outputs within one level of each other
    assert all(float(o.mean()) >= 15 + 5 * i - 1 for i, o in enumerate(outs["torch"]))  # never darker, in order
