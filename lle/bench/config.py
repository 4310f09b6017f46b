"""What a benchmark run is asked to do (:class:`BenchConfig`) and the small helpers every bench mode shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lle.bench.artifacts import ExportSettings
from lle.errors import ConfigError, LLEError

__all__ = ["DEFAULT_MIN_PSNR", "BenchConfig", "backend_opts", "reason", "size_label"]

DEFAULT_MIN_PSNR = {"fp32": 50.0, "bf16": 35.0, "fp16": 40.0, "int8": 30.0}


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to benchmark. ``sizes`` are (width, height); give at most one of ``iters`` / ``seconds`` (default 3 s).

    ``weights`` (.safetensors) feeds torch and on-the-fly exports (``export``: calibration images for INT8);
    ``artifacts`` is an ``lle export`` folder whose artifacts are used first. ``threads`` 0 leaves each runtime's
    default. ``min_psnr`` maps precision -> dB.
    """

    weights: Path | None = None
    artifacts: Path | None = None
    backends: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
    precisions: tuple[str, ...] = ("fp32",)
    sizes: tuple[tuple[int, int], ...] = ((1280, 720),)
    batch: int = 1
    warmup: int = 3
    iters: int | None = None
    seconds: float | None = None
    threads: int = 0
    device: str = "auto"
    quality_frames: int = 3
    min_psnr: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_PSNR))
    references: bool = True
    cache_dir: Path | None = None
    video: Path | None = None
    photos: bool = True
    frames: Path | None = None
    darken: bool = True
    export: ExportSettings = field(default_factory=ExportSettings)

    def __post_init__(self) -> None:
        if self.iters is not None and self.seconds is not None:
            raise ConfigError("give either iters or seconds, not both", hint="--iters N or --seconds S")
        if (self.iters is not None and self.iters < 1) or (self.seconds is not None and self.seconds <= 0):
            raise ConfigError(f"iters/seconds must be positive, got iters={self.iters} seconds={self.seconds}")
        if self.batch < 1 or self.warmup < 0 or self.quality_frames < 1 or self.threads < 0:
            raise ConfigError(
                f"need batch >= 1, warmup >= 0, quality_frames >= 1, threads >= 0; got batch={self.batch}, "
                f"warmup={self.warmup}, quality_frames={self.quality_frames}, threads={self.threads}"
            )
        if not self.sizes and self.video is None:
            raise ConfigError("no sizes to benchmark", hint="--sizes 1280x720,1920x1080")
        if self.weights is None and self.artifacts is None:
            raise ConfigError("nothing to benchmark", hint="pass --preset, --weights or --artifacts")

    @property
    def budget(self) -> dict[str, Any]:
        """``iters``/``seconds`` keyword arguments for :func:`measure` (3 s when neither is set)."""
        return {"iters": self.iters, "seconds": None} if self.iters else {"iters": None, "seconds": self.seconds or 3.0}


def reason(err: BaseException) -> str:
    if isinstance(err, LLEError):
        return f"{err}" + (f" ({err.hint})" if err.hint else "")
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def size_label(wh: tuple[int, int]) -> str:
    return f"{wh[0]}x{wh[1]}"


def backend_opts(cfg: BenchConfig, backend: str) -> dict[str, Any]:
    opts: dict[str, Any] = {"device": cfg.device}
    if backend == "torch" and not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        opts["device"] = "auto"  # OpenVINO device names (GPU, NPU) mean nothing to torch
    if cfg.threads:
        opts["threads"] = cfg.threads
    return opts
