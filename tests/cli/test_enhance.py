from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app
from lle.io.image import read_image, write_image
from lle.presets import PRESETS
from tests.conftest import dark_image

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("cmd", [[], ["--help"], ["enhance", "--help"], ["info", "--help"], ["train", "--help"]])
def test_help(cmd: list[str]) -> None:
    res = _run(*cmd)
    assert res.exit_code in (0, 2) and "Usage" in res.output


def test_info_lists_backends_with_their_versions() -> None:
    ort = pytest.importorskip("onnxruntime")
    res = _run("info")
    assert res.exit_code == 0
    assert ort.__version__ in res.output and "CPU" in res.output  # the installed version, not just the name


@pytest.mark.parametrize("preset", PRESETS)
def test_enhance_mixed_folder(tmp_path, tiny_weights, preset: str) -> None:
    src = tmp_path / "in"
    sizes = {"a.png": (17, 9), "b.jpg": (1, 1), "c.png": (40, 64), "d.tif": (33, 20)}
    for name, (h, w) in sizes.items():
        write_image(src / name, dark_image(h, w), depth=16 if name == "d.tif" else 8)
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    res = _run("enhance", str(src), "-o", str(out), "--preset", preset, "--weights", str(tiny_weights[preset]))
    assert res.exit_code == 0, res.output
    for name, (h, w) in sizes.items():
        img, depth = read_image(out / name)
        assert img.shape == (h, w, 3)
        assert depth == (16 if name == "d.tif" else 8)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_enhance_single_file_and_tiling_agree(tmp_path, tiny_weights) -> None:
    src = tmp_path / "x.png"
    write_image(src, dark_image(70, 90))
    w = str(tiny_weights["quality"])
    assert _run("enhance", str(src), "-o", str(tmp_path / "full.png"), "--weights", w).exit_code == 0
    assert _run("enhance", str(src), "-o", str(tmp_path / "tiled.png"), "--weights", w, "--tile", "48").exit_code == 0
    a, _ = read_image(tmp_path / "full.png")
    b, _ = read_image(tmp_path / "tiled.png")
    assert a.shape == b.shape == (70, 90, 3)
    assert np.abs(a - b).mean() < 0.02


def test_exif_orientation_is_respected(tmp_path, tiny_weights) -> None:
    # A 1x2 JPEG tagged "rotate 90" must come out 2x1 (OpenCV applies EXIF orientation on decode).
    base = (np.random.default_rng(0).random((8, 16, 3)) * 60).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", base)
    assert ok
    data = bytes(buf)
    exif = (
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"
    )
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    src = tmp_path / "rot.jpg"
    src.write_bytes(data[:2] + app1 + data[2:])
    img, _ = read_image(src)
    assert img.shape == (16, 8, 3)
    out = tmp_path / "o.jpg"
    assert _run("enhance", str(src), "-o", str(out), "--weights", str(tiny_weights["quality"])).exit_code == 0
    assert read_image(out)[0].shape == (16, 8, 3)


def _one_line_error(res, needle: str) -> None:
    assert res.exit_code != 0
    text = res.output
    assert needle in text, text
    assert "Traceback" not in text


def test_bad_inputs(tmp_path, tiny_weights) -> None:
    w = str(tiny_weights["quality"])
    good = tmp_path / "g.png"
    write_image(good, dark_image(8, 8))
    _one_line_error(
        _run("enhance", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "--weights", w), "input not found"
    )
    txt = tmp_path / "n.png"
    txt.write_text("this is not an image")
    _one_line_error(_run("enhance", str(txt), "-o", str(tmp_path / "o.png"), "--weights", w), "not a readable image")
    (tmp_path / "doc.txt").write_text("x")
    _one_line_error(
        _run("enhance", str(tmp_path / "doc.txt"), "-o", str(tmp_path / "o"), "--weights", w), "not an image file"
    )
    (tmp_path / "empty").mkdir()
    _one_line_error(_run("enhance", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--weights", w), "no images")
    _one_line_error(_run("enhance", str(good), "-o", str(good), "--weights", w), "refusing to overwrite input")
    _one_line_error(_run("enhance", str(tmp_path), "-o", str(tmp_path), "--weights", w), "refusing to overwrite")
    _one_line_error(
        _run("enhance", str(good), "-o", str(tmp_path / "o.png"), "--weights", str(tmp_path / "w.st")),
        "weights file not found",
    )
    _one_line_error(_run("enhance", str(good), "-o", str(tmp_path / "o.png"), "--preset", "fast"), "fast")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_as_user(tmp_path, tiny_weights) -> None:
    good = tmp_path / "g.png"
    write_image(good, dark_image(8, 8))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = _run("enhance", str(good), "-o", str(ro / "o.png"), "--weights", str(tiny_weights["quality"]))
    _one_line_error(res, "cannot write")


def test_unwritable_output(tmp_path, tiny_weights) -> None:
    good = tmp_path / "g.png"
    write_image(good, dark_image(8, 8))
    blocker = tmp_path / "file"
    blocker.write_text("a file, so nothing can be created under it")
    res = _run("enhance", str(good), "-o", str(blocker / "o.png"), "--weights", str(tiny_weights["quality"]))
    _one_line_error(res, "cannot write")
    assert blocker.read_text().startswith("a file")


def test_info_names_the_triton_client_package() -> None:
    res = _run("info")
    assert res.exit_code == 0 and "tritonclient" in res.output
