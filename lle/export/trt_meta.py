"""TensorRT engine metadata that needs no TensorRT: shape profiles, the sidecar JSON, its check, ``trtexec`` lines.

A ``.plan`` file only runs with the TensorRT version and GPU architecture that built it. The sidecar
(``model.<precision>.plan.json``, the engine's manifest) records both, and :func:`validate_sidecar` turns a
mismatch into a clear :class:`BackendError` before TensorRT fails with an opaque deserialisation error.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lle.errors import BackendError, ConfigError

__all__ = [
    "EngineSpec",
    "EnvironmentSpec",
    "Shape",
    "check_input_shape",
    "legacy_path_allowed",
    "read_sidecar",
    "shape_profiles",
    "trtexec_command",
    "validate_sidecar",
]

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    """What an engine is tied to: TensorRT version, CUDA runtime version, GPU and its compute capability."""

    tensorrt: str
    cuda: str = "unknown"
    gpu: str = "unknown"
    compute_capability: str = "unknown"
    """``"8.7"`` for Orin, ``"9.0"`` for H100."""


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """The sidecar JSON of a ``.plan``: build environment, precision, shape profiles and source ONNX."""

    env: EnvironmentSpec
    precision: str
    strongly_typed: bool
    profiles: dict[str, tuple[Shape, Shape, Shape]]
    """Input name -> (min, opt, max) shapes."""
    source_onnx: str
    source_sha256: str
    dla_core: int = -1
    builder: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["profiles"] = {k: {"min": list(v[0]), "opt": list(v[1]), "max": list(v[2])} for k, v in self.profiles.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineSpec:
        try:
            profiles = {k: (tuple(v["min"]), tuple(v["opt"]), tuple(v["max"])) for k, v in d["profiles"].items()}
            return cls(env=EnvironmentSpec(**d["env"]), precision=d["precision"], strongly_typed=d["strongly_typed"],
                       profiles=profiles, source_onnx=d["source_onnx"], source_sha256=d["source_sha256"],
                       dla_core=d.get("dla_core", -1), builder=d.get("builder", {}))
        except (KeyError, TypeError) as err:
            raise BackendError(f"engine sidecar is incomplete or malformed: {err}",
                               hint="rebuild the engine with `lle export --format tensorrt`") from err


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def shape_profiles(
    io: dict[str, Any], *, min_hw: tuple[int, int], opt_hw: tuple[int, int], max_hw: tuple[int, int], batch: int,
    multiple: int,
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Min/opt/max shapes for every graph input, H and W rounded up to ``multiple`` (the pipeline pads to it).

    ``io`` is :func:`lle.export.onnx_export.onnx_io` output. The image input gets (batch, 3, H, W) for the three
    sizes; other inputs (the realtime graph's ``state`` (N, C, L, L) and ``alpha`` (1,)) get their static shape with
    the batch axis set to ``batch``.

    Example:
        >>> io = {"inputs": {"input": ["batch", 3, "height", "width"], "alpha": [1]}}
        >>> shape_profiles(io, min_hw=(60, 60), opt_hw=(720, 1280), max_hw=(1080, 1920), batch=1, multiple=16)["input"]
        ((1, 3, 64, 64), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    """
    out: dict[str, tuple[Shape, Shape, Shape]] = {}
    for name, dims in io["inputs"].items():
        if len(dims) == 4 and dims[1] == 3 and not isinstance(dims[2], int):
            mn, opt, mx = (
                (batch, 3, _round_up(hw[0], multiple), _round_up(hw[1], multiple)) for hw in (min_hw, opt_hw, max_hw)
            )
            out[name] = (mn, opt, mx)
            continue
        if any(not isinstance(d, int) or d <= 0 for d in dims[1:]):
            raise ConfigError(f"graph input {name!r} has dynamic dims {dims} besides the batch axis")
        shape = tuple([batch if not isinstance(dims[0], int) or len(dims) > 1 else dims[0], *dims[1:]])
        out[name] = (shape, shape, shape)
    return out


def _dims(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_command(
    onnx: Path, plan: Path, profiles: dict[str, tuple[Shape, Shape, Shape]], *, strongly_typed: bool,
    precision: str, workspace_mib: int, opt_level: int, timing_cache: Path | None, dla_core: int = -1,
    gpu_fallback: bool = True, calib_cache: Path | None = None,
) -> str:
    """The ``trtexec`` line that builds the same engine on the device (TensorRT 10 flag names).

    Example:
        >>> p = {"input": ((1, 3, 64, 64), (1, 3, 720, 1280), (1, 3, 1088, 1920))}
        >>> print(trtexec_command(Path("m.onnx"), Path("m.plan"), p, strongly_typed=True, precision="fp16",
        ...                       workspace_mib=1024, opt_level=3, timing_cache=None))  # doctest: +NORMALIZE_WHITESPACE
        trtexec --onnx=m.onnx --saveEngine=m.plan --skipInference --minShapes=input:1x3x64x64
        --optShapes=input:1x3x720x1280 --maxShapes=input:1x3x1088x1920 --memPoolSize=workspace:1024M
        --builderOptimizationLevel=3 --stronglyTyped
    """
    args = ["trtexec", f"--onnx={onnx}", f"--saveEngine={plan}", "--skipInference"]
    for flag, i in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
        args.append(f"{flag}=" + ",".join(f"{n}:{_dims(s[i])}" for n, s in profiles.items()))
    args += [f"--memPoolSize=workspace:{workspace_mib}M", f"--builderOptimizationLevel={opt_level}"]
    if timing_cache is not None:
        args.append(f"--timingCacheFile={timing_cache}")
    if strongly_typed:
        args.append("--stronglyTyped")
    else:
        args += {"fp16": ["--fp16"], "int8": ["--fp16", "--int8"]}.get(precision, [])
        if calib_cache is not None and precision == "int8":
            args.append(f"--calib={calib_cache}")
    if dla_core >= 0:
        args.append(f"--useDLACore={dla_core}")
        if gpu_fallback:
            args.append("--allowGPUFallback")
    return shlex.join(args)


def legacy_path_allowed(trt_version: str) -> bool:
    """True on TensorRT 10.x, the last major version with precision builder flags and implicit INT8 calibrators.

    Example:
        >>> legacy_path_allowed("10.3.0.30"), legacy_path_allowed("11.0.0")
        (True, False)
    """
    try:
        return int(trt_version.split(".")[0]) == 10
    except ValueError:
        return False


def read_sidecar(plan: Path) -> EngineSpec:
    """The :class:`EngineSpec` recorded beside ``plan``.

    Raises:
        BackendError: no sidecar, unreadable JSON or missing fields.
    """
    from lle.export.manifest import manifest_path

    side = manifest_path(Path(plan))
    if not side.is_file():
        raise BackendError(f"no sidecar {side.name} beside {Path(plan).name}: cannot tell what it was built for",
                           hint="rebuild with `lle export --format tensorrt` (it writes the sidecar)")
    try:
        data = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BackendError(f"cannot read engine sidecar {side}: {err}") from err
    return EngineSpec.from_dict(data.get("engine", data))


def _version_key(v: str) -> tuple[str, ...]:
    """TensorRT engines need the same major.minor.patch; the build number does not matter."""
    return tuple(v.split(".")[:3])


def validate_sidecar(spec: EngineSpec, env: EnvironmentSpec, *, plan_name: str = "engine") -> list[str]:
    """Check that an engine built as ``spec`` can load in ``env``; returns warnings for harmless differences.

    Raises:
        BackendError: another TensorRT version or another GPU architecture, naming both sides and the fix.

    Example:
        >>> spec = EngineSpec(EnvironmentSpec("10.3.0", "12.6", "Orin", "8.7"), "int8", True, {}, "m.onnx", "0")
        >>> validate_sidecar(spec, EnvironmentSpec("10.3.0.30", "12.6", "Orin", "8.7"))
        []
    """
    built, here = spec.env, env
    rebuild = (f"rebuild it on this machine: `lle export --format tensorrt --precision {spec.precision}` "
               f"or the trtexec line saved beside it")
    if _version_key(built.tensorrt) != _version_key(here.tensorrt):
        raise BackendError(
            f"{plan_name} was built with TensorRT {built.tensorrt} but this machine has TensorRT {here.tensorrt}; "
            "engines only load with the TensorRT version that built them",
            hint=rebuild,
        )
    if "unknown" not in (built.compute_capability, here.compute_capability) and (
        built.compute_capability != here.compute_capability
    ):
        raise BackendError(
            f"{plan_name} was built for {built.gpu} (compute capability {built.compute_capability}) but this GPU is "
            f"{here.gpu} (compute capability {here.compute_capability}); engines are specific to a GPU architecture",
            hint=rebuild,
        )
    warnings = []
    if built.gpu != here.gpu:
        warnings.append(f"{plan_name} was built on {built.gpu}, running on {here.gpu} (same architecture): "
                        "tactics were tuned for the other GPU, rebuild for best speed")
    if built.cuda != here.cuda:
        warnings.append(f"{plan_name} was built with CUDA {built.cuda}, this machine has CUDA {here.cuda}")
    return warnings


def check_input_shape(spec: EngineSpec, name: str, shape: Shape) -> None:
    """Raise :class:`BackendError` when ``shape`` of input ``name`` is outside the engine's profile.

    Raises:
        BackendError: naming the shape received and the profile's min and max.
    """
    if name not in spec.profiles:
        raise BackendError(f"engine has no input {name!r}; inputs: {', '.join(spec.profiles)}")
    mn, _, mx = spec.profiles[name]
    if len(shape) != len(mn) or any(not (a <= s <= b) for a, s, b in zip(mn, shape, mx, strict=True)):
        raise BackendError(
            f"input {name!r} of shape {list(shape)} is outside the engine's profile min {list(mn)} max {list(mx)}",
            hint="resize the input or rebuild with a profile (--profile export/<target>.toml or --max-hw) covering it",
        )
