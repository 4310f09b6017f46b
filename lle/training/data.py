"""Training/validation data assembled from a :class:`DataConfig`: pre-loaded, cropped and synthesised on the fly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lle.data.datasets import Pair, load_images, load_pairs, resolve_pair_dirs, split_names
from lle.data.synth import degrade, sample_params
from lle.data.transforms import paired_augment
from lle.data.unprocess import degrade_camera, sample_camera
from lle.errors import DataError
from lle.io.image import is_image
from lle.training.config import DataConfig

__all__ = ["PairedTrainSet", "TrainData", "build_data"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TrainData:
    real: list[Pair] = field(default_factory=list)
    real_root: list[str] = field(default_factory=list)
    """Root folder name of each entry of ``real`` (per-root repeat and scale)."""
    clean: list[np.ndarray] = field(default_factory=list)
    val: dict[str, list[Pair]] = field(default_factory=dict)


def _root_name(root: Path) -> str:
    return root.name or str(root)


def _center(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(1.0, side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    return img[: h - h % 16, : w - w % 16]


def build_data(cfg: DataConfig, seed: int, progress: Callable[[str], None] | None = None) -> TrainData:
    """Load every configured source; split pairs by group; make a fixed synthetic validation set.

    Raises:
        DataError: no training data at all, or a configured folder is missing.
    """
    out = TrainData()
    for root_s in cfg.pairs:
        root = Path(root_s)
        low_dir, ref_dir = resolve_pair_dirs(root)
        names = sorted(p.name for p in low_dir.iterdir() if is_image(p))
        train_n, val_n = split_names(names, cfg.val_fraction, root=root, group_column=cfg.group_column)
        if progress:
            progress(f"loading {root} ({len(train_n)} train / {len(val_n)} val pairs)")
        loaded = load_pairs(low_dir, ref_dir, names=train_n, max_side=cfg.max_side).pairs
        out.real += loaded
        out.real_root += [_root_name(root)] * len(loaded)
        if val_n:
            side = int(cfg.val_side_by_root.get(_root_name(root), cfg.val_side))
            vp = load_pairs(low_dir, ref_dir, names=val_n, max_side=side).pairs
            out.val[_root_name(root)] = [Pair(p.name, _center(p.low, side), _center(p.ref, side)) for p in vp]
    for root_s in cfg.val_pairs:
        root = Path(root_s)
        low_dir, ref_dir = resolve_pair_dirs(root)
        vp = load_pairs(low_dir, ref_dir, max_side=cfg.val_side).pairs
        out.val[_root_name(root)] = [
            Pair(p.name, _center(p.low, cfg.val_side), _center(p.ref, cfg.val_side)) for p in vp
        ]
    clean_paths: list[Path] = []
    for root_s in cfg.clean:
        root = Path(root_s)
        if not root.is_dir():
            raise DataError(f"clean image folder not found: {root}")
        clean_paths += sorted(p for p in root.rglob("*") if p.is_file() and is_image(p))
    if clean_paths:
        rel = [str(p) for p in clean_paths]
        train_c, val_c = split_names(rel, cfg.val_fraction)
        if progress:
            progress(f"loading {len(train_c)} clean photos for synthesis")
        out.clean = load_images([Path(p) for p in train_c], max_side=cfg.max_side)
        rng = np.random.default_rng(seed + 12345)
        synth_val = []
        for p in val_c[: cfg.synth_val_count]:
            ref = _center(load_images([Path(p)], max_side=cfg.val_side)[0], cfg.val_side)
            low = degrade(ref, sample_params(cfg.synth, rng), rng, quantize=cfg.synth.quantize)
            synth_val.append(Pair(Path(p).name, low, ref))
        if synth_val:  # a handful of clean photos can all hash into the training side
            out.val["synthetic"] = synth_val
        if cfg.camera_share > 0 and synth_val:
            cam_rng = np.random.default_rng(seed + 54321)  # its own stream: the "synthetic" set stays as it was
            out.val["camera"] = [
                Pair(p.name, degrade_camera(p.ref, sample_camera(cfg.camera, cam_rng), cam_rng), p.ref)
                for p in synth_val
            ]
    if not out.real and not out.clean:
        raise DataError("no training data: set data.pairs and/or data.clean", hint="see training/configs/*.yaml")
    return out


def _rescale(a: np.ndarray, b: np.ndarray, s: float, crop: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = a.shape[:2]
    s = max(s, crop / min(h, w))
    if s >= 1.0:
        return a, b
    size = (max(crop, round(w * s)), max(crop, round(h * s)))
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA), cv2.resize(b, size, interpolation=cv2.INTER_AREA)


class PairedTrainSet(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Index space = each real pair x its root's repeat + clean photos. Item i of epoch e is seeded by (seed, e, i).

    A root's repeat is ``repeat_by_root[name]`` or ``real_repeat``; its crops are downscaled by ``scale_by_root[name]``
    or ``scale``. Returns ((3, crop, crop) low, (3, crop, crop) reference), float32 in [0, 1].
    """

    def __init__(self, data: TrainData, cfg: DataConfig, seed: int) -> None:
        self.data, self.cfg, self.seed, self.epoch = data, cfg, seed, 0
        self.roots = data.real_root or [""] * len(data.real)
        self.real_index = [
            j for j, r in enumerate(self.roots) for _ in range(int(cfg.repeat_by_root.get(r, cfg.real_repeat)))
        ]
        self.n_real = len(self.real_index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_real + len(self.data.clean)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        cfg = self.cfg
        if i < self.n_real:
            j = self.real_index[i]
            s = float(rng.uniform(*cfg.scale_by_root.get(self.roots[j], cfg.scale)))
            pair = self.data.real[j]
            low, ref = _rescale(pair.low, pair.ref, s, cfg.crop)
            low, ref = paired_augment(low, ref, cfg.crop, rng, exposure_jitter=cfg.exposure_jitter)
        else:
            s = float(rng.uniform(*cfg.scale))
            img = self.data.clean[i - self.n_real]
            img, _ = _rescale(img, img, s, cfg.crop)
            _, ref = paired_augment(img, img, cfg.crop, rng)
            if cfg.camera_share > 0 and rng.uniform() < cfg.camera_share:
                low = degrade_camera(ref, sample_camera(cfg.camera, rng), rng)
            else:
                low = degrade(ref, sample_params(cfg.synth, rng), rng, quantize=cfg.synth.quantize)
        return torch.from_numpy(low.transpose(2, 0, 1).copy()), torch.from_numpy(ref.transpose(2, 0, 1).copy())
