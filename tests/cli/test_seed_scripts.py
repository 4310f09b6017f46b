"""training/test.py and training/train.py keep the seed's command lines working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from lle.io.image import read_image, write_image
from tests.conftest import dark_image

ROOT = Path(__file__).resolve().parents[2]


def test_seed_test_py_enhances_like_lle_enhance(tmp_path, tiny_weights) -> None:
    src = tmp_path / "in.png"
    write_image(src, dark_image(20, 30))
    w = str(tiny_weights["realtime"])
    cmd = [sys.executable, str(ROOT / "training" / "test.py"), "--input", str(src), "--output", str(tmp_path / "a.png"),
           "--preset", "realtime", "--weights", w]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    cmd2 = [sys.executable, "-m", "lle.cli.app", "enhance", str(src), "-o", str(tmp_path / "b.png"),
            "--preset", "realtime", "--weights", w]
    assert subprocess.run(cmd2, capture_output=True, check=False).returncode == 0
    np.testing.assert_array_equal(read_image(tmp_path / "a.png")[0], read_image(tmp_path / "b.png")[0])


def test_seed_test_py_bad_input_exits_nonzero(tmp_path, tiny_weights) -> None:
    cmd = [sys.executable, str(ROOT / "training" / "test.py"), "--input", str(tmp_path / "nope.jpg"),
           "--output", str(tmp_path / "o.jpg"), "--weights", str(tiny_weights["quality"])]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "input not found" in res.stderr and "Traceback" not in res.stderr


def test_seed_train_py_defaults_to_data_layout(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        ref = rng.uniform(0.3, 0.8, (40, 40, 3)).astype(np.float32)
        write_image(tmp_path / "data" / "ground_truth" / f"{i}.png", ref)
        write_image(tmp_path / "data" / "low_light" / f"{i}.png", ref * 0.2)
    cmd = [sys.executable, str(ROOT / "training" / "train.py"), "--steps", "2", "--set", "model.arch={width: 4}",
           "--set", "data.crop=32", "--set", "batch=2", "--set", "val_every=2", "--set", "data.val_fraction=0.5",
           "--set", "threads=1"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "runs" / "quality" / "best.safetensors").is_file()
