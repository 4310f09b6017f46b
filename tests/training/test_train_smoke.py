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
        "keep_val_weights=true",
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
    sets = sorted(card.metrics["validation"])
    assert sets and [(r[0], r[1]) for r in rows] == [(step, name) for step in ("2", "4") for name in sets]
    # keep_val_weights: every validation's EMA weights stay beside best/last, each with its own step in the card
    assert sorted(p.name for p in out.glob("val_*.safetensors")) == ["val_2.safetensors", "val_4.safetensors"]
    assert load_card(out / "val_2.safetensors").training["steps"] == 2


def _steps(path) -> list[int]:
    return [int(r[0]) for r in csv.reader(path.open()) if r]


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tiny_data, tmp_path) -> None:
    """Interrupt at step 20 of 40 (mid-epoch), resume: same weights as an uninterrupted run, no logged step twice."""
    import torch

    root, clean = tiny_data

    def cfg(out):
        return load_config(
            TrainConfig,
            None,
            [
                "model.arch={width: 4}",
                f"data.pairs=[{root}]",
                f"data.clean=[{clean}]",
                "data.crop=32",
                "data.val_fraction=0.5",
                "data.group_column=null",
                "batch=2",
                "steps=40",
                "val_every=20",
                "threads=1",
                "seed=3",
                f"out_dir={out}",
            ],
        )

    ref = train(cfg(tmp_path / "ref"))

    def stop_at_20(step, total, info) -> None:
        if step == 20:
            raise KeyboardInterrupt("test")  # what SIGTERM or Ctrl-C raise inside the loop

    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path / "cut"), progress=stop_at_20)
    cut = tmp_path / "cut"
    st = torch.load(cut / "last.pt", weights_only=True)
    assert st["step"] == 20
    assert 0 < st["batches_in_epoch"] or st["epoch"] > 0
    res = train(cfg(cut), resume=True)
    assert res.step == 40
    want = torch.load(ref.last, weights_only=True)
    got = torch.load(res.last, weights_only=True)
    for key in ("model", "ema"):
        for name, tensor in want[key].items():
            assert torch.equal(got[key][name], tensor), f"{key}.{name} differs after resume"
    assert _steps(cut / "train.csv") == [20, 40] == _steps(tmp_path / "ref" / "train.csv")
    n = len(load_card(ref.best).metrics["validation"])
    assert n and _steps(cut / "val.csv") == [40] * n  # the interruption came before step 20's validation
    assert _steps(tmp_path / "ref" / "val.csv") == [20] * n + [40] * n


def test_resume_drops_log_rows_written_after_the_checkpoint(tiny_data, tmp_path) -> None:
    """A run killed without a final checkpoint logged steps the resumed run will log again: they are dropped."""
    import torch

    root, _ = tiny_data
    out = tmp_path / "run"
    ov = [
        "model.arch={width: 4}",
        f"data.pairs=[{root}]",
        "data.crop=32",
        "data.val_fraction=0.5",
        "data.group_column=null",
        "batch=2",
        "steps=20",
        "val_every=20",
        "threads=1",
        f"out_dir={out}",
    ]
    first = train(load_config(TrainConfig, None, ov))
    st = torch.load(first.last, weights_only=True)
    st["step"] = 10  # as if the last checkpoint were from step 10 and the logs ran on to 20
    torch.save(st, first.last)
    train(load_config(TrainConfig, None, ov), resume=True)
    n = len(load_card(first.best).metrics["validation"])
    assert _steps(out / "train.csv") == [20]
    assert _steps(out / "val.csv") == [20] * n


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
    step = torch.load(out / "last.pt", weights_only=True)["step"]
    assert step > 0  # train.csv exists only after step 20 was logged
    resumed = subprocess.run(
        [*cmd[:-2], "--set", f"steps={step + 2}", "--set", f"out_dir={out}", "--resume"],
        capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == step + 2


def test_worker_processes_make_the_same_batches(tiny_data, tmp_path) -> None:
    root, clean = tiny_data
    base = [
        "model.arch={width: 4}", f"data.pairs=[{root}]", f"data.clean=[{clean}]", "data.crop=32",
        "data.val_fraction=0.5", "data.group_column=null", "batch=2", "steps=2", "val_every=2", "threads=1",
        "optim.warmup_steps=1",
    ]  # fmt: skip
    losses = {}
    for workers in (0, 1):
        seen: list[float] = []
        train(load_config(TrainConfig, None, [*base, f"workers={workers}", f"out_dir={tmp_path / str(workers)}"]),
              progress=lambda s, t, i, seen=seen: seen.append(i["loss"]))  # fmt: skip
        losses[workers] = seen
    assert losses[0] and losses[0] == pytest.approx(losses[1], rel=1e-5)
