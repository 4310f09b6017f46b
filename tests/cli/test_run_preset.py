"""`lle run PRESET`: the bundled weights run without an explicit export (exported once into a cache)."""

from __future__ import annotations

import json
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
    a, b = (cv2.imread(str(tmp_path / be / "f1.png")) for be in ("torch", "onnxruntime"))
    assert a is not None and b is not None
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


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


def _clip(path: Path, w: int = 48, h: int = 32, n: int = 3) -> Path:
    pytest.importorskip("av")
    from tests.robustness.files import tiny_video

    return tiny_video(path, n=n, size=(w, h), fps=25)


def test_auto_measures_the_installed_runtimes_once_and_says_what_it_picked(bundled, tmp_path) -> None:
    """Real measurement of both runtimes on the tiny frames, cached; the second run reuses it."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    src = _frames(tmp_path)
    args = ["run", "realtime", "--source", str(src), "--threads", "1", "-o"]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    [cached] = (tmp_path / "cache" / "runtime-pick").glob("*.json")
    data = json.loads(cached.read_text())
    assert data["backend"] in ("onnxruntime", "openvino") and set(data["ms"]) == {"onnxruntime", "openvino"}
    assert data["key"]["size"] == [34, 21] and data["key"]["threads"] == 1
    assert data["key"]["artifact"].endswith("-uint8/model.onnx")
    assert f"backend {data['backend']} (measured: " in r.output and "at 34x21, 1 thread" in r.output
    assert f"with {data['backend']} (" in r.output  # what ran is what was picked
    r = CliRunner().invoke(app, [*args, str(tmp_path / "out2")])
    assert r.exit_code == 0, r.output
    assert f"backend {data['backend']} (cached: " in r.output
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["f0.png", "f1.png", "f2.png"]


def test_auto_measures_the_video_graph_at_the_frame_size_with_the_run_threads(bundled, tmp_path, monkeypatch) -> None:
    """The measurement gets the I420 export, the video's size and the options the run uses; the pick runs."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    import lle.runtime_pick

    clip = _clip(tmp_path / "in.mp4")
    seen: list[tuple[str, Path, lle.runtime_pick.Setup]] = []

    def fake(name: str, artifact: Path, setup: lle.runtime_pick.Setup) -> list[float]:
        seen.append((name, artifact, setup))
        return [1.0, 1.0, 1.0] if name == "openvino" else [2.0, 2.0, 2.0]

    monkeypatch.setattr(lle.runtime_pick, "time_runtime", fake)
    out = tmp_path / "out.mp4"
    r = CliRunner().invoke(app, ["run", "realtime", "--source", str(clip), "-o", str(out), "--threads", "1",
                                 "--codec-threads", "1"])
    assert r.exit_code == 0, r.output
    assert [n for n, _, _ in seen] == ["onnxruntime", "openvino"]
    setup = seen[0][2]
    assert all(a.parent.name.endswith("-i420") for _, a, _ in seen)
    assert setup.size == (48, 32) and setup.threads == 1
    assert setup.options == {"onnxruntime": {"threads": 1}, "openvino": {"threads": 1, "hint": "latency"}}
    assert "with openvino (" in r.output and "backend openvino (measured: openvino 1.0 ms, onnxruntime 2.0 ms " \
        "at 48x32, 1 thread)" in r.output
    seen.clear()
    r = CliRunner().invoke(app, ["run", "realtime", "--source", str(clip), "-o", str(tmp_path / "b.mp4"),
                                 "--threads", "1"])
    assert r.exit_code == 0 and seen == [] and "backend openvino (cached: " in r.output
    r = CliRunner().invoke(app, ["run", "realtime", "--source", str(clip), "-o", str(tmp_path / "c.mp4"),
                                 "--threads", "2"])
    assert r.exit_code == 0 and len(seen) == 2 and seen[0][2].threads == 2  # another thread setting: measured again


@pytest.mark.parametrize("backend", ["onnxruntime", "ort", "openvino", "torch"])
def test_an_explicit_backend_is_never_measured_or_replaced(bundled, backend) -> None:
    from lle.presets import resolve_model

    def picker(artifact: Path, runtimes: tuple[str, ...]) -> str:
        raise AssertionError("an explicit backend must not be measured")

    assert resolve_model("realtime", backend, picker=picker)[1] == backend


def test_an_explicit_backend_on_the_cli_records_no_pick(bundled, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    import lle.runtime_pick

    monkeypatch.setattr(lle.runtime_pick, "time_runtime", lambda *a: pytest.fail("measured an explicit backend"))
    r = CliRunner().invoke(app, ["run", "realtime", "--backend", "onnxruntime", "--source", str(_frames(tmp_path)),
                                 "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "with onnxruntime (" in r.output and "measured" not in r.output and "cached" not in r.output
    assert not (tmp_path / "cache" / "runtime-pick").exists()


def test_auto_without_a_picker_takes_the_first_installed_runtime(bundled) -> None:
    pytest.importorskip("onnxruntime")
    from lle.presets import resolve_model

    seen: list[tuple[str, ...]] = []

    def picker(artifact: Path, runtimes: tuple[str, ...]) -> str:
        seen.append(runtimes)
        return runtimes[-1]

    assert resolve_model("realtime", "auto")[1] == "onnxruntime"
    path, name, _ = resolve_model("realtime", "auto", picker=picker)
    assert name == seen[0][-1] and path.name == "model.onnx" and "onnxruntime" in seen[0]
