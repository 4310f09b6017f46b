from __future__ import annotations

import csv

import numpy as np
import pytest

from lle.config import load_config
from lle.io.image import write_image
from lle.models.checkpoint import load_card, load_model
from lle.training.config import TrainConfig
from lle.training.loop import lr_factor, train


@pytest.fixture
def tiny_data(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for i in range(4):
        ref = rng.uniform(0.3, 0.8, (40, 48, 3)).astype(np.float32)
        write_image(root / "ground_truth" / f"{i}.png", ref)
        write_image(root / "low_light" / f"{i}.png", ref * 0.2)
    clean = tmp_path / "clean"
    for i in range(4):
        write_image(clean / f"c{i}.jpg", rng.uniform(0.2, 0.9, (40, 40, 3)).astype(np.float32))
    return root, clean


@pytest.mark.parametrize("preset,arch", [("quality", "{width: 4}"), ("realtime", "{width: 4, depth: 2, lowres: 16}")])
def test_two_steps_then_resume(tiny_data, tmp_path, preset: str, arch: str) -> None:
    root, clean = tiny_data
    out = tmp_path / "run"
    ov = [
        f"model.preset={preset}",
        f"model.arch={arch}",
        f"data.pairs=[{root}]",
        f"data.clean=[{clean}]",
        "data.crop=32",
        "data.val_fraction=0.5",
        "data.group_column=null",
        "batch=2",
        "steps=2",
        "val_every=2",
        "threads=1",
        f"out_dir={out}",
        "optim.warmup_steps=1",
    ]
    seen = []
    res = train(load_config(TrainConfig, None, ov), progress=lambda s, t, i: seen.append((s, t, i["loss"])))
    assert res.step == 2 and res.best.is_file() and res.last.is_file()
    assert (out / "config.resolved.yaml").is_file()
    card = load_card(res.best)
    assert card.preset == preset and "validation" in card.metrics
    model, _ = load_model(res.best)
    assert seen and seen[-1][0] == 2 and np.isfinite(seen[-1][2])
    res2 = train(
        load_config(TrainConfig, None, [*ov[:-2], "steps=4", f"out_dir={out}", "optim.warmup_steps=1"]), resume=True
    )
    assert res2.step == 4
    rows = list(csv.reader((out / "val.csv").open()))
    assert {r[0] for r in rows} == {"2", "4"}


def test_no_validation_split_still_trains_and_saves_best(tiny_data, tmp_path) -> None:
    _, clean = tiny_data  # val_fraction 0: every clean photo lands on the training side, no validation set at all
    ov = [
        "model.arch={width: 4}",
        f"data.clean=[{clean}]",
        "data.crop=32",
        "data.val_fraction=0",
        "batch=2",
        "steps=2",
        "val_every=1",
        "threads=1",
        f"out_dir={tmp_path / 'run'}",
        "optim.warmup_steps=1",
    ]
    res = train(load_config(TrainConfig, None, ov))
    assert res.step == 2 and res.best.is_file() and res.val == {}
    assert load_card(res.best).metrics["validation"] == {}


def test_resume_without_checkpoint_is_a_clear_error(tmp_path) -> None:
    from lle.errors import ConfigError

    cfg = load_config(TrainConfig, None, [f"out_dir={tmp_path}", f"data.clean=[{tmp_path}]"])
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(cfg, resume=True)


def test_lr_schedule_warms_up_and_decays_with_time_budget() -> None:
    cfg = load_config(TrainConfig, None, ["steps=1000", "optim.warmup_steps=10", "max_minutes=10"])
    assert lr_factor(cfg, 0, 0) == pytest.approx(0.1)
    assert lr_factor(cfg, 10, 0) == pytest.approx(1.0, abs=1e-3)
    assert lr_factor(cfg, 20, 5.0) < 0.6
    assert lr_factor(cfg, 20, 10.0) == pytest.approx(cfg.optim.min_lr_ratio)


def test_sigterm_saves_a_resumable_checkpoint(tiny_data, tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    root, _ = tiny_data
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "lle.cli.app",
        "train",
        "--set",
        "model.arch={width: 4}",
        "--set",
        f"data.pairs=[{root}]",
        "--set",
        "data.crop=32",
        "--set",
        "batch=2",
        "--set",
        "steps=100000",
        "--set",
        "val_every=100000",
        "--set",
        "data.val_fraction=0.5",
        "--set",
        "data.group_column=null",
        "--set",
        "threads=1",
        "--set",
        f"out_dir={out}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "train.csv").is_file():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert (out / "last.pt").is_file()
    import torch

    assert proc.returncode != 0
    assert torch.load(out / "last.pt", weights_only=True)["step"] >= 0
