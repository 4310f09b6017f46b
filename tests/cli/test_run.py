"""``lle run`` through typer's CliRunner: video in/out, images, bad sources give one clear line and exit 1."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lle.cli import run as run_cli


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    run_cli.register(a)

    @a.callback()
    def _root() -> None:
        pass

    return a


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), 12.0, (64, 48))
    for i in range(12):
        w.write(np.full((48, 64, 3), 10 + 5 * i, np.uint8))
    w.release()
    return path


def test_run_video_with_stats(app: typer.Typer, clip: Path, tiny_weights: dict, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    r = CliRunner().invoke(app, ["run", str(tiny_weights["realtime"]), "--source", str(clip), "-o", str(out),
                                 "--stats"])
    assert r.exit_code == 0, r.output
    assert "12 frame(s)" in r.output and "infer" in r.output
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()


def test_run_single_image(app: typer.Typer, tiny_weights: dict, tmp_path: Path) -> None:
    src = tmp_path / "dark.png"
    cv2.imwrite(str(src), np.full((40, 50, 3), 30, np.uint8))
    out = tmp_path / "bright.jpg"
    r = CliRunner().invoke(app, ["run", str(tiny_weights["quality"]), "--source", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert cv2.imread(str(out)).shape == (40, 50, 3)


@pytest.mark.parametrize(
    ("source", "message"),
    [("missing.mp4", "source not found"), ("corrupt.mp4", "not a readable video"), ("97", "cannot open camera 97")],
)
def test_bad_sources_one_line(app: typer.Typer, tiny_weights: dict, tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00garbage" * 500)
    src = source if source.isdigit() else str(tmp_path / source)
    r = CliRunner().invoke(app, ["run", str(tiny_weights["realtime"]), "--source", src, "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output


def test_unknown_model_type(app: typer.Typer, clip: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    r = CliRunner().invoke(app, ["run", str(model), "--source", str(clip)])
    assert r.exit_code == 1 and "unknown model type" in r.output


def test_show_needs_gui(app: typer.Typer, clip: Path, tiny_weights: dict) -> None:
    if "GTK" in cv2.getBuildInformation() or "QT" in cv2.getBuildInformation().upper().split("GUI")[-1][:200]:
        pytest.skip("OpenCV has a GUI here")
    r = CliRunner().invoke(app, ["run", str(tiny_weights["realtime"]), "--source", str(clip), "--show"])
    assert r.exit_code == 1 and "GUI" in r.output
