"""Training configuration tree (``lle train --config training/configs/<preset>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lle.data.synth import SynthConfig
from lle.data.unprocess import UnprocessConfig
from lle.training.losses import LossConfig

__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "TrainConfig"]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    preset: str = "quality"
    arch: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataConfig:
    """Where pairs come from and how training crops are made."""

    pairs: list[str] = field(default_factory=list)
    """Paired data roots (``low_light/``+``ground_truth/`` or ``low/``+``ref/`` inside); split into train/val."""
    val_pairs: list[str] = field(default_factory=list)
    """Paired roots used only for validation."""
    clean: list[str] = field(default_factory=list)
    """Folders of well-exposed photos (searched recursively); synthetic low light is made from them on the fly."""
    val_fraction: float = 0.15
    """Share held out for validation. Pairs split by name (or group); clean photos by their path as configured, so
    keep spelling ``data.clean`` the same way (the shipped recipes use ``../shared/data/clean``) to keep the split."""
    group_column: str | None = "scene_group"
    """Column of the pair root's manifest.csv that groups near-duplicates; splits never cut a group."""
    real_repeat: int = 2
    """How many times each real training pair appears per epoch (balances real vs synthetic)."""
    repeat_by_root: dict[str, int] = field(default_factory=dict)
    """Per pair root (its folder name, e.g. ``lol_pairs``): repeat count replacing ``real_repeat`` for that root."""
    scale_by_root: dict[str, list[float]] = field(default_factory=dict)
    """Per pair root: ``[lo, hi]`` downscale range replacing ``scale``. Real sensor noise is only real at (close to)
    native resolution: downscaling averages it away, so noisy pairs keep a scale near 1."""
    crop: int = 128
    scale: tuple[float, float] = (0.6, 1.0)
    """Random downscale of each image before cropping (more context per crop, like a smaller sensor)."""
    exposure_jitter: float = 0.25
    max_side: int = 1024
    synth: SynthConfig = field(default_factory=SynthConfig)
    camera: UnprocessConfig = field(default_factory=UnprocessConfig)
    """Camera-model synthesis (unprocess, sensor noise in camera space, re-process with another camera)."""
    camera_share: float = 0.0
    """Share of the synthetic training items made with ``camera`` instead of ``synth``; above 0 also adds a
    "camera" validation set (held-out clean photos through the camera model)."""
    synth_val_count: int = 32
    val_side: int = 512
    val_side_by_root: dict[str, int] = field(default_factory=dict)
    """Per pair root: longest side of its validation images replacing ``val_side`` (keep noisy pairs at native size)."""


@dataclass(frozen=True, slots=True)
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.999


@dataclass(frozen=True, slots=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    steps: int = 20000
    batch: int = 8
    seed: int = 0
    val_every: int = 1000
    checkpoint_minutes: float = 5.0
    keep_val_weights: bool = False
    """Also keep each validation's EMA weights as ``val_<step>.safetensors`` (to pick or average steps afterwards)."""
    max_minutes: float = 0.0
    """Stop cleanly (with checkpoints) after this many minutes; 0 = no limit."""
    amp: str = "auto"
    """auto (bf16 on CPU, fp16 on CUDA), bf16, fp16 or none."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    workers: int = 0
    """DataLoader worker processes making crops and synthetic pairs (0 = in the training process; a GPU needs
    several to stay busy)."""
    device: str = "auto"
    init_weights: str | None = None
    """Warm-start from these .safetensors weights (same preset)."""
    out_dir: str = "runs/quality"
