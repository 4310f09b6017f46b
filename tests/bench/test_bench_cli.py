"""``lle bench`` through typer's CliRunner: a tiny successful run and one-line errors for bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lle.cli.bench import parse_min_psnr, parse_sizes, register
from lle.errors import InputError

app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:  # a callback keeps `bench` a named subcommand, as in the real app
    pass


runner = CliRunner()


def test_tiny_bench_cli(tiny_weights: dict[str, Path], tiny_artifacts: dict[str, Path], tmp_path: Path,
                        bench_cache: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "res"
    res = runner.invoke(app, ["bench", "--weights", str(tiny_weights["realtime"]), "--backends", "torch,onnxruntime",
                              "--precisions", "fp32", "--sizes", "64x48,72x40", "--iters", "2", "--warmup", "0",
                              "--quality-frames", "1", "--out", str(out), "--no-plots",
                              "--cache-dir", str(bench_cache),
                              "--artifacts", str(tiny_artifacts["realtime"])])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "resize+copy" in res.output and "torch" in res.output
    data = json.loads((out / "bench-realtime.json").read_text())
    assert data["settings"]["iters"] == 2 and data["host"]["date"]
    assert (out / "bench-realtime.csv").is_file() and (out / "bench-realtime.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--weights", "/nonexistent/w.safetensors"], "weights file not found"),
        (["--sizes", "12x"], "is not WIDTHxHEIGHT"),
        (["--sizes", ","], "names no size"),
        (["--iters", "3", "--seconds", "1"], "not both"),
        (["--min-psnr", "int8"], "is not PRECISION=DB"),
        (["--preset", "fast"], "unknown preset"),
        (["--artifacts", "/nonexistent/dir"], "--artifacts folder not found"),
        (["--video", "/nonexistent/v.mp4"], "video not found"),
    ],
)
def test_bad_inputs_one_line_error(tiny_weights: dict[str, Path], args: list[str], message: str) -> None:
    if "--weights" not in args:
        args = ["--weights", str(tiny_weights["realtime"]), *args]
    res = runner.invoke(app, ["bench", *args])
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output
    assert res.output.startswith("error:") and res.output.count("error:") == 1


def test_missing_bundled_weights_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lle.presets.WEIGHTS_DIR", tmp_path)
    res = runner.invoke(app, ["bench", "--preset", "quality"])
    assert res.exit_code == 1 and "no bundled weights" in res.output and "--weights" in res.output


def test_parsers() -> None:
    assert parse_sizes("640x360, 1280x720") == ((640, 360), (1280, 720))
    assert parse_min_psnr("int8=28,fp16=38.5") == {"fp32": 50.0, "bf16": 35.0, "fp16": 38.5, "int8": 28.0}
    with pytest.raises(InputError):
        parse_min_psnr("int8=abc")
