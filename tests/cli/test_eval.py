from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lle.cli.app import app
from lle.data.datasets import Pair
from lle.evaluate import BASELINES, evaluate
from lle.io.image import read_image, write_image

runner = CliRunner()


def _pairs(root, n=3):
    rng = np.random.default_rng(0)
    for i in range(n):
        ref = rng.uniform(0.3, 0.7, (24, 32, 3)).astype(np.float32)
        write_image(root / "ref" / f"{i}.png", ref)
        write_image(root / "low" / f"{i}.png", ref * 0.25)
    return root / "low", root / "ref"


def test_eval_writes_report_and_sheet(tmp_path, tiny_weights) -> None:
    low, ref = _pairs(tmp_path / "set")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "eval",
            "--pairs",
            str(low),
            str(ref),
            "--weights",
            str(tiny_weights["quality"]),
            "-o",
            str(out),
            "--name",
            "tiny",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "tiny.json").read_text())
    assert rep["n"] == 3 and [m["name"] for m in rep["methods"]] == ["lle", *BASELINES]
    ident = rep["methods"][1]
    assert len(ident["per_image"]) == 3
    # The identity row scores the dark input itself: recompute its PSNR and brightness error independently.
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    for row in ident["per_image"]:
        x, y = read_image(low / row["image"])[0], read_image(ref / row["image"])[0]
        mse = float(np.mean((x.astype(np.float64) - y) ** 2))
        assert row["psnr"] == pytest.approx(10 * np.log10(1.0 / mse), abs=1e-3)
        assert row["brightness_error"] == pytest.approx(float((x @ luma).mean() - (y @ luma).mean()), abs=1e-3)
    sheet, _ = read_image(out / "tiny_sheet.png")
    assert sheet.shape[0] > 3 * 24
    crops, _ = read_image(out / "tiny_crops.png")  # 100 % crops: two per pair, at the images' own scale
    assert crops.shape[0] >= 2 * 3 * 24
    lle_row = rep["methods"][0]
    for key in ("chroma_ratio", "ab_error", "noise", "ref_noise", "clipped", "inverted"):
        assert key in lle_row and key in lle_row["per_image"][0]
    assert ident["chroma_ratio"] < 1.0 and ident["clipped"] == 0.0 and ident["inverted"] == 0.0  # the dark input


def test_baselines_brighten_and_identity_scores_input() -> None:
    ref = np.random.default_rng(1).uniform(0.3, 0.7, (32, 32, 3)).astype(np.float32)
    pairs = [Pair("a", ref * 0.2, ref)]
    report, kept = evaluate(pairs, dict(BASELINES), keep=1)
    by = {m.name: m for m in report.methods}
    assert by["gamma"].psnr > by["identity"].psnr
    assert abs(by["gamma"].brightness_error) < abs(by["identity"].brightness_error)
    assert set(kept[0]) == {"input", "reference", *BASELINES}


def test_eval_bad_inputs(tmp_path, tiny_weights) -> None:
    res = runner.invoke(app, ["eval", "--weights", str(tiny_weights["quality"])])
    assert res.exit_code == 1 and "--pairs" in res.output
    res = runner.invoke(
        app, ["eval", "--pairs", str(tmp_path / "a"), str(tmp_path / "b"), "--weights", str(tiny_weights["quality"])]
    )
    assert res.exit_code == 1 and "data folder not found" in res.output


def _static_noisy_clip(path, n=20, w=64, h=48):
    import cv2

    r = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 40 + 25 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    vw = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"mp4v"), 12.0, (w, h))
    for _ in range(n):
        vw.write(np.clip(base[..., None] + r.normal(0, 4.0, (h, w, 3)), 0, 255).astype(np.uint8))
    vw.release()
    return path


def test_eval_video_flicker(tmp_path, tiny_weights) -> None:
    clip = _static_noisy_clip(tmp_path / "static.mp4")
    out = tmp_path / "ev"
    res = runner.invoke(app, ["eval", "--video", str(clip), "--weights", str(tiny_weights["realtime"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "static_flicker.json").read_text())
    assert rep["frames"] == 20 and rep["input_flicker"] > 0
    assert abs(rep["input_luma"] - 40 / 255) < 0.01  # the clip's grey level (through the H.264-ish round trip)
    assert rep["output_luma"] >= rep["input_luma"] - 0.005 and rep["output_luma_max"] >= rep["output_luma"]
    assert "mean luma" in res.output
    # Smoothing removes temporal instability; what remains is the tone curve's local slope (about 1 for a gain).
    assert rep["ratio"] <= 1.05
    unsmoothed = runner.invoke(
        app,
        ["eval", "--video", str(clip), "--weights", str(tiny_weights["realtime"]), "-o", str(out), "--smoothing", "0"],
    )
    assert unsmoothed.exit_code == 0
    assert json.loads((out / "static_flicker.json").read_text())["ratio"] >= rep["ratio"] - 1e-6


def test_video_luma_is_the_mean_bgr_luma_of_the_frames() -> None:
    """The accumulator reads frames as BGR (what sources and sinks carry): pure red has luma 0.299."""
    from lle.evaluate import _FlickerAccumulator

    acc = _FlickerAccumulator()
    red, grey = np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 51, np.uint8)
    red[..., 2] = 255
    acc.add(red)
    acc.add(grey)
    assert acc.luma == pytest.approx((0.299 + 0.2) / 2, abs=1e-6) and acc.luma_max == pytest.approx(0.299, abs=1e-6)


def test_eval_video_missing(tmp_path, tiny_weights) -> None:
    res = runner.invoke(
        app, ["eval", "--video", str(tmp_path / "nope.mp4"), "--weights", str(tiny_weights["realtime"])]
    )
    assert res.exit_code == 1 and "video not found" in res.output


def test_eval_split_val_scores_only_held_out_scene_groups(tmp_path, tiny_weights) -> None:
    low, ref = _pairs(tmp_path / "set", n=6)
    # pairs 0-2 share scene g0 (held out at 15 %), 3-5 share g1 (kept for training)
    (tmp_path / "set" / "manifest.csv").write_text(
        "name,scene_group\n" + "".join(f"{i}.png,{'g0' if i < 3 else 'g1'}\n" for i in range(6))
    )
    out = tmp_path / "out"
    base = ["eval", "--pairs", str(low), str(ref), "--weights", str(tiny_weights["quality"]), "-o", str(out),
            "--no-baselines"]  # fmt: skip
    res = runner.invoke(app, [*base, "--split", "val"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "set_val.json").read_text())
    assert sorted(r["image"] for r in rep["methods"][0]["per_image"]) == ["0.png", "1.png", "2.png"]
    m = rep["methods"][0]
    assert 0 <= m["black"] <= 255 and 0 <= m["ref_black"] <= 255 and m["contrast_ratio"] > 0
    res = runner.invoke(app, [*base, "--split", "train"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "set_train.json").read_text())["n"] == 3
    res = runner.invoke(app, [*base, "--split", "test"])
    assert res.exit_code == 1 and "--split 'test' is not one of all, val, train" in res.output
