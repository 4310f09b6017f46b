"""Two-process DDP (gloo, CPU) smoke test through torchrun, as multi-GPU/multi-node training runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lle.io.image import write_image
from lle.models.checkpoint import load_card


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(6):
        ref = rng.uniform(0.3, 0.8, (40, 40, 3)).astype(np.float32)
        write_image(tmp_path / "d" / "ground_truth" / f"{i}.png", ref)
        write_image(tmp_path / "d" / "low_light" / f"{i}.png", ref * 0.2)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "lle.cli.app",
        "train",
        "--set",
        "model.arch={width: 4}",
        "--set",
        f"data.pairs=[{tmp_path / 'd'}]",
        "--set",
        "data.crop=32",
        "--set",
        "batch=2",
        "--set",
        "steps=3",
        "--set",
        "val_every=3",
        "--set",
        "data.val_fraction=0.3",
        "--set",
        "threads=1",
        "--set",
        f"out_dir={out}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_card(out / "best.safetensors").training["steps"] == 3
    assert (out / "last.pt").is_file()
