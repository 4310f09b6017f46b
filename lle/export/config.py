"""Typed export configuration and deployment profiles (``export/<target>.toml``).

A deployment profile is a TOML file whose tables map one-to-one onto the frozen dataclasses below; unknown keys are
errors that name the valid keys. The CLI builds the same :class:`ExportConfig` from flags when no profile is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lle.config import from_dict, to_dict
from lle.errors import ConfigError

__all__ = [
    "CalibrationConfig",
    "ExportConfig",
    "FORMATS",
    "resolve_io",
    "InputSpec",
    "OpenVINOConfig",
    "PRECISIONS",
    "TensorRTConfig",
    "load_profile",
    "with_overrides",
]

Format = Literal["onnx", "openvino", "onnx-int8", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]
FORMATS: tuple[str, ...] = ("onnx", "openvino", "onnx-int8", "tensorrt")
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
CALIB_METHODS: tuple[str, ...] = ("minmax", "entropy", "percentile")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Input sizes (H, W) in pixels. ``opt_hw`` is the deployment resolution: calibration and tuning use it."""

    batch: int = 1
    min_hw: tuple[int, int] = (64, 64)
    opt_hw: tuple[int, int] = (720, 1280)
    max_hw: tuple[int, int] = (1088, 1920)


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    """INT8 calibration: how many images, how they are chosen and how ranges are estimated."""

    n: int = 64
    holdout: int = 4
    """Images kept out of calibration to check INT8 PSNR on."""
    seed: int = 0
    method: str = "percentile"
    """minmax | entropy | percentile (ONNX Q/DQ); OpenVINO/NNCF always uses the global min/max."""
    hw: tuple[int, int] | None = None
    """Calibration resolution; default: ``input.opt_hw`` (the deployment resolution)."""
    mixed: bool = True
    """Keep the convolutions INT8 hurts most in float until the probe PSNR reaches ``min_psnr + margin_db``."""
    probe: int = 8
    """Calibration images the mixed-precision search measures on (the held-out check images never are)."""
    margin_db: float = 5.0
    """Head-room over ``min_psnr`` the search aims for on the probe images: the held-out images the export is checked
    on came out up to about 5 dB below the probe images for the quality preset."""
    max_float: float = 0.5
    """At most this fraction of the convolutions stays float."""
    give_up_db: float = 6.0
    """OpenVINO INT8: fail before NNCF runs when the mixed-precision search's best probe PSNR is more than this many
    dB under ``min_psnr`` (NNCF lands within a few dB of the search, either side); ``inf`` never gives up early."""


@dataclass(frozen=True, slots=True)
class OpenVINOConfig:
    device: str = "CPU"
    cache_dir: str = ""
    """OpenVINO model cache (CACHE_DIR) for the parity run; empty = none."""
    preset: str = "mixed"
    """NNCF quantization preset: performance (symmetric) | mixed (asymmetric activations)."""


@dataclass(frozen=True, slots=True)
class TensorRTConfig:
    workspace_mib: int = 1024
    opt_level: int = 3
    """Builder optimization level 0-5."""
    timing_cache: str = ""
    """Timing cache file to read and update; empty = ``<out>/timing.cache``."""
    dla_core: int = -1
    """DLA core (Jetson AGX/Orin NX); -1 = GPU only."""
    gpu_fallback: bool = True
    legacy_precision_flags: bool = False
    """TensorRT 10.x only: FP16/INT8 builder flags instead of a strongly typed network (e.g. DLA INT8)."""
    legacy_calibrator: bool = False
    """TensorRT 10.x only: implicit INT8 entropy calibrator (deprecated since 10.1, removed in 11)."""


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """Everything an export needs besides the weights. Also the schema of a deployment profile."""

    name: str = "custom"
    description: str = ""
    format: str = "onnx"
    precision: str = "fp32"
    opset: int = 17
    simplify: bool = True
    min_psnr: float = 35.0
    """INT8 (and post-build TensorRT) check: PSNR in dB of the artifact vs the FP32 reference."""
    atol_fp32: float = 1e-4
    atol_fp16: float = 1e-2
    io: str = "auto"
    """Graph I/O: ``uint8`` (NHWC BGR frames in and out, any size), ``i420`` (realtime preset: planar 4:2:0 video
    frames in and out, as PyAV decodes them; the fastest for video), ``float32`` (NCHW RGB in [0, 1]) or ``auto``:
    uint8 for the realtime preset's ONNX/OpenVINO FP32/FP16 exports, float32 otherwise (INT8 calibration and the
    TensorRT profiles work on float32 graphs)."""
    parity_hw: tuple[tuple[int, int], ...] = ((64, 96), (96, 128))
    """Seeded random inputs for the FP32/FP16 parity check, rounded up to the size multiple."""
    input: InputSpec = field(default_factory=InputSpec)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    openvino: OpenVINOConfig = field(default_factory=OpenVINOConfig)
    tensorrt: TensorRTConfig = field(default_factory=TensorRTConfig)

    def __post_init__(self) -> None:
        _check(self.format, FORMATS, "format")
        _check(self.precision, PRECISIONS, "precision")
        _check(self.io, ("auto", "float32", "uint8", "i420"), "io")
        if self.io in ("uint8", "i420") and (self.precision == "int8" or self.format == "tensorrt"):
            raise ConfigError(
                f"--io {self.io} is for ONNX/OpenVINO FP32/FP16 exports, not {self.format} {self.precision}",
                hint="INT8 and TensorRT exports take float32 NCHW input: use --io float32 (or leave --io out)",
            )
        _check(self.calibration.method, CALIB_METHODS, "calibration.method")
        _check(self.openvino.preset, ("performance", "mixed"), "openvino.preset")
        if self.opset < 17:
            raise ConfigError(f"opset {self.opset} is too old", hint="use opset >= 17 (LayerNorm, Q/DQ per-channel)")
        for name in ("min_hw", "opt_hw", "max_hw"):
            hw = getattr(self.input, name)
            if len(hw) != 2 or min(hw) < 1:
                raise ConfigError(f"input.{name} must be [height, width] > 0, got {list(hw)}")
        lo, opt, hi = self.input.min_hw, self.input.opt_hw, self.input.max_hw
        if not all(lo[i] <= opt[i] <= hi[i] for i in (0, 1)):
            raise ConfigError(
                f"input sizes must satisfy min <= opt <= max per axis, got min {list(lo)} opt {list(opt)} "
                f"max {list(hi)}"
            )
        if not 0.0 <= self.calibration.max_float <= 1.0 or self.calibration.probe < 1:
            raise ConfigError(f"calibration.max_float must be in [0, 1] and probe >= 1, got "
                              f"{self.calibration.max_float}, {self.calibration.probe}")
        if not self.calibration.give_up_db >= 0.0:
            raise ConfigError(f"calibration.give_up_db must be >= 0 (inf: never), got {self.calibration.give_up_db}")
        if self.calibration.n < 1 or self.calibration.holdout < 0:
            raise ConfigError(f"calibration.n must be >= 1 and holdout >= 0, got {self.calibration.n}, "
                              f"{self.calibration.holdout}")

    @property
    def calib_hw(self) -> tuple[int, int]:
        """The calibration resolution: the profile's deployment resolution unless set explicitly."""
        return self.calibration.hw or self.input.opt_hw

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)  # type: ignore[no-any-return]


def _check(value: str, valid: tuple[str, ...], key: str) -> None:
    if value not in valid:
        raise ConfigError(f"{key} {value!r} is not valid", hint=f"valid values: {', '.join(valid)}")


def load_profile(path: Path) -> ExportConfig:
    """Parse a deployment profile TOML into an :class:`ExportConfig`.

    Raises:
        ConfigError: unreadable TOML, an unknown key (the hint lists the valid ones) or an invalid value.

    Example:
        >>> cfg = load_profile(Path(__file__).parents[2] / "export" / "x86-onnxruntime.toml")
        >>> cfg.format
        'onnx'
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from lle._lazy import require

        tomllib = require("tomli", extra="core")  # type: ignore[assignment]
    path = Path(path)
    try:
        tree = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read profile {path}: {err.strerror}", hint="see export/*.toml") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"profile {path} is not valid TOML: {err}") from err
    tree.setdefault("name", path.stem)
    try:
        return from_dict(ExportConfig, tree)
    except ConfigError as err:
        raise ConfigError(f"profile {path.name}: {err}", hint=err.hint) from err


def with_overrides(cfg: ExportConfig, **changes: Any) -> ExportConfig:
    """A copy of ``cfg`` with top-level fields or ``section__field`` keys replaced; ``None`` values are ignored.

    Example:
        >>> with_overrides(ExportConfig(), precision="fp16", tensorrt__opt_level=5).tensorrt.opt_level
        5
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if "__" in key:
            section, sub = key.split("__", 1)
            nested.setdefault(section, {})[sub] = value
        else:
            top[key] = value
    for section, values in nested.items():
        top[section] = dataclasses.replace(getattr(cfg, section), **values)
    return dataclasses.replace(cfg, **top)


def resolve_io(cfg: ExportConfig, preset: str) -> str:
    """The graph I/O ``cfg.io`` means for ``preset``: ``uint8``, ``i420`` or ``float32`` (see :attr:`ExportConfig.io`).

    Example:
        >>> resolve_io(ExportConfig(), "realtime"), resolve_io(ExportConfig(precision="int8"), "realtime")
        ('uint8', 'float32')
    """
    if cfg.io != "auto":
        return cfg.io
    ok = preset == "realtime" and cfg.format in ("onnx", "openvino") and cfg.precision in ("fp32", "fp16")
    return "uint8" if ok else "float32"
