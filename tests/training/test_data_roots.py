"""Per-root repeat, crop scale and validation size: noisy real pairs keep their native noise and their own weight."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lle.config import load_config
from lle.io.image import write_image
from lle.training.config import TrainConfig
from lle.training.data import PairedTrainSet, build_data


def _root(tmp_path, name: str, n: int, hw: tuple[int, int], noise: float) -> str:
    """``n`` pairs in ``low/``+``ref/`` with a manifest grouping them two by two (scene_group)."""
    rng = np.random.default_rng(len(name))
    root = tmp_path / name
    rows = []
    for i in range(n):
        ref = np.full((*hw, 3), 0.5, np.float32)
        low = np.clip(ref * 0.1 + noise * rng.standard_normal(ref.shape).astype(np.float32), 0, 1)
        write_image(root / "ref" / f"{name}_{i}.png", ref)
        write_image(root / "low" / f"{name}_{i}.png", low)
        rows.append({"name": f"{name}_{i}.png", "scene_group": f"g{i // 2}"})
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["name", "scene_group"])
        w.writeheader()
        w.writerows(rows)
    return str(root)


@pytest.fixture
def two_roots(tmp_path):
    return _root(tmp_path, "plain", 4, (64, 64), 0.0), _root(tmp_path, "noisy", 6, (96, 128), 0.05)


def _cfg(plain: str, noisy: str, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [
        f"data.pairs=[{plain}, {noisy}]", "data.crop=32", "data.val_fraction=0.0", "data.scale=[0.25, 0.25]",
        "data.exposure_jitter=0.0", *extra,
    ])  # fmt: skip


def test_repeat_by_root_weights_each_root(two_roots) -> None:
    plain, noisy = two_roots
    cfg = _cfg(plain, noisy, "data.real_repeat=2", "data.repeat_by_root={noisy: 5}")
    data = build_data(cfg.data, cfg.seed)
    assert sorted(set(data.real_root)) == ["noisy", "plain"] and len(data.real) == 10
    ds = PairedTrainSet(data, cfg.data, cfg.seed)
    roots = [data.real_root[j] for j in ds.real_index]
    assert roots.count("plain") == 4 * 2 and roots.count("noisy") == 6 * 5
    assert len(ds) == 38


def test_scale_by_root_keeps_native_noise(two_roots) -> None:
    plain, noisy = two_roots
    native = _cfg(plain, noisy, "data.scale_by_root={noisy: [1.0, 1.0]}")
    shrunk = _cfg(plain, noisy)

    def noise_std(cfg: TrainConfig) -> float:
        data = build_data(cfg.data, cfg.seed)
        ds = PairedTrainSet(data, cfg.data, cfg.seed)
        lows = [ds[i][0] for i in range(ds.n_real) if data.real_root[ds.real_index[i]] == "noisy"]
        return float(np.mean([float(x.std()) for x in lows]))

    # a 4x downscale averages the sensor noise away; at native size it stays
    assert noise_std(native) > 2 * noise_std(shrunk)


def test_val_side_by_root_keeps_native_size(two_roots) -> None:
    plain, noisy = two_roots
    # val_fraction 0.5: groups g0 and g2 hash into validation, g1 stays for training (in both roots)
    cfg = _cfg(plain, noisy, "data.val_fraction=0.5", "data.val_side=64", "data.val_side_by_root={noisy: 128}")
    val = build_data(cfg.data, cfg.seed).val
    assert len(val["noisy"]) == 4 and len(val["plain"]) == 2
    assert {p.low.shape[:2] for p in val["noisy"]} == {(96, 128)}
    assert {p.low.shape[:2] for p in val["plain"]} == {(64, 64)}
    small = build_data(_cfg(plain, noisy, "data.val_fraction=0.5", "data.val_side=64").data, 0).val
    assert {p.low.shape[:2] for p in small["noisy"]} == {(48, 64)}


def test_pairs_split_by_scene_group_per_root(two_roots) -> None:
    plain, noisy = two_roots
    cfg = _cfg(plain, noisy, "data.val_fraction=0.5")
    data = build_data(cfg.data, cfg.seed)
    names = {p.name for p in data.real}
    for vp in data.val.values():
        for p in vp:
            i = int(p.name.split("_")[1].split(".")[0])
            mate = p.name.replace(f"_{i}.", f"_{i ^ 1}.")
            assert mate not in names  # a scene group never straddles train and val
