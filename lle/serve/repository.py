"""Triton model repositories: ``REPO/<name>/config.pbtxt`` + ``REPO/<name>/1/<artifact>`` from lle exports.

One table, :data:`PLATFORMS`, says what each serving platform is in Triton terms; :func:`write_model` copies an
exported artifact (with its manifest) into a version folder and writes a config that matches the graph:

- stateless graphs: dims with -1 for H and W, ``max_batch_size`` and ``dynamic_batching``;
- the realtime video graph: a sequence model (``sequence_batching`` with the ``oldest`` strategy, many sequences at
  once), its coefficient state as Triton implicit state (``state { input_name: "state" output_name: "state_out" }``,
  zero at a sequence start) on the native platforms; on the Python backend (which has no implicit state) the model
  keeps it per correlation id. Either way the client resets it by starting the sequence again (scene cuts) and
  sends ``alpha`` (its temporal smoothing) with each frame;
- ``instance_group`` per device (``KIND_CPU`` / ``KIND_GPU``), and for onnxruntime on GPU optionally the TensorRT
  execution accelerator.

Every config is parsed with tritonclient's ``model_config`` protobuf before it is written, so a structural mistake
fails the export, not the server start. Files are written atomically.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lle._atomic import atomic_write_bytes, temp_path_for
from lle.errors import ConfigError, ExportError, InputError

__all__ = [
    "PLATFORMS", "RUNTIMES", "ArtifactIO", "PlatformSpec", "TritonConfig", "artifact_io", "model_config",
    "model_threads", "parse_config", "repository_models", "write_model",
]  # fmt: skip

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """What a serving platform is in Triton terms and which artifacts it takes."""

    key: str
    """``platform: "..."`` or ``backend: "..."`` in config.pbtxt."""
    value: str
    suffixes: tuple[str, ...]
    implicit_state: bool
    """Triton supports implicit state on this backend (onnxruntime, TensorRT; not OpenVINO, not Python)."""
    export_format: str
    """``lle export --format`` that makes its artifact."""


PLATFORMS: dict[str, PlatformSpec] = {
    "python": PlatformSpec("backend", "python", (".onnx", ".xml"), False, "onnx"),
    "onnxruntime": PlatformSpec("platform", "onnxruntime_onnx", (".onnx",), True, "onnx"),
    "openvino": PlatformSpec("backend", "openvino", (".xml",), False, "openvino"),
    "tensorrt": PlatformSpec("platform", "tensorrt_plan", (".plan", ".engine"), True, "tensorrt"),
}
RUNTIMES: dict[str, str] = {"onnxruntime": "onnx", "openvino": "openvino"}
"""lle backend run inside the Python-backend model -> the export format it runs."""
DEVICES = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class TritonConfig:
    """How to serve an artifact. ``runtime`` is the lle backend inside a ``python`` model."""

    platform: str = "python"
    runtime: str = "onnxruntime"
    device: str = "cpu"
    instances: int = 1
    max_batch_size: int = 8
    """Stateless graphs (sequence models take one frame per request)."""
    max_sequences: int = 64
    """Sequence models: sequences (cameras, videos) served at once (``oldest.max_candidate_sequences``)."""
    sequence_idle_s: float = 60.0
    """A sequence without a request for this long is ended by the server (its state freed)."""
    threads: int = 0
    """CPU threads of the runtime inside a ``python`` model per instance (0 = :func:`model_threads` decides on the
    serving machine: its cores less one, shared by the instances)."""
    ort_tensorrt: bool = False
    """onnxruntime on GPU: add the TensorRT execution accelerator."""
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for key, value, valid in (("platform", self.platform, PLATFORMS), ("runtime", self.runtime, RUNTIMES),
                                  ("device", self.device, DEVICES)):
            if value not in valid:
                raise ConfigError(f"triton {key} {value!r} is not valid", hint=f"valid: {', '.join(valid)}")
        if self.instances < 1 or self.max_batch_size < 1 or self.max_sequences < 1 or self.sequence_idle_s <= 0:
            raise ConfigError(
                f"triton instances, max_batch_size and max_sequences must be >= 1 and sequence_idle_s > 0; got "
                f"{self.instances}, {self.max_batch_size}, {self.max_sequences}, {self.sequence_idle_s}"
            )
        if self.ort_tensorrt and (self.platform != "onnxruntime" or self.device != "gpu"):
            raise ConfigError("the TensorRT accelerator is for the onnxruntime platform on GPU",
                              hint="add --triton-device gpu --triton-platform onnxruntime, or leave it out")

    @property
    def spec(self) -> PlatformSpec:
        return PLATFORMS[self.platform]

    @property
    def export_format(self) -> str:
        """The ``lle export --format`` whose artifact this serves (for python: the runtime's)."""
        return RUNTIMES[self.runtime] if self.platform == "python" else self.spec.export_format


@dataclass(frozen=True, slots=True)
class ArtifactIO:
    """An exported graph's I/O as Triton needs it (read from the manifest, no runtime loaded)."""

    preset: str
    frames: bool
    """(N, H, W, 3) uint8 BGR in and out; else (N, 3, H, W) float32."""
    size_multiple: int
    state_shape: tuple[int, ...] | None
    """(C, L, L) of the realtime video graph, else None."""
    max_batch: int | None = None
    """Largest batch the artifact takes (TensorRT profiles), None = dynamic."""


def model_threads(threads: int, instances: int = 1, cores: int | None = None) -> int:
    """CPU threads for the runtime inside each instance of a ``python`` model: ``threads`` if > 0, else automatic.

    Automatic: the cores this process may run on (``cores``, default its CPU affinity) less one, which is left to
    Triton's own request threads and same-host clients, divided among the ``instances``; at least 1. The runtimes'
    own defaults start one thread per core (onnxruntime pins and spins them), which on a server that shares its
    cores with Triton, its clients or other jobs makes every request wait for a descheduled thread.

    Example:
        >>> model_threads(0, 1, cores=2), model_threads(0, 2, cores=2), model_threads(0, 1, cores=16), model_threads(3)
        (1, 1, 15, 3)
    """
    if threads > 0:
        return threads
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, instances))


def artifact_io(artifact: Path) -> ArtifactIO:
    """Read the I/O of an ``lle export`` artifact from its manifest (``<artifact>.json``).

    Raises:
        InputError: no artifact, no manifest, or a manifest without I/O.
    """
    from lle.export.manifest import read_manifest

    artifact = Path(artifact)
    if not artifact.is_file():
        raise InputError(f"artifact not found: {artifact}", hint="pass a file written by `lle export`")
    m = read_manifest(artifact)
    if not m:
        raise InputError(f"no manifest {artifact.name}.json beside {artifact}: cannot tell its I/O",
                         hint="pass an artifact written by `lle export` (with its .json)")
    mult = int(m.get("size_multiple") or 1)
    if m.get("graph_io") == "i420":
        raise InputError(f"{artifact.name} takes I420 video frames, which the Triton repository does not serve",
                         hint="serve an export with --io uint8 (BGR frames) or --io float32")
    frames = m.get("graph_io") == "uint8"
    inputs = (m.get("io") or {}).get("inputs")
    if inputs:
        state = inputs.get("state")
        return ArtifactIO(str(m.get("preset") or "model"), frames, 1 if frames else mult,
                          tuple(int(d) for d in state[1:]) if state else None)
    profiles = (m.get("engine") or {}).get("profiles")
    if profiles and "input" in profiles:
        state = profiles.get("state")
        return ArtifactIO(str(m.get("preset") or "model"), False, mult,
                          tuple(int(d) for d in state["max"][1:]) if state else None, int(profiles["input"]["max"][0]))
    raise InputError(f"manifest of {artifact.name} records no graph I/O", hint="re-export it with `lle export`")


def _dims(values: Sequence[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _param(key: str, value: str) -> str:
    return f'  {{ key: "{key}" value: {{ string_value: "{value}" }} }}'


def model_config(name: str, io: ArtifactIO, cfg: TritonConfig, *, filename: str,
                 cc_filenames: dict[str, str] | None = None) -> str:  # fmt: skip
    """The config.pbtxt text for serving an artifact with I/O ``io`` as model ``name``.

    Raises:
        ConfigError: the platform cannot serve this graph (OpenVINO has no implicit state for the video graph).
    """
    spec = cfg.spec
    sequence = io.state_shape is not None
    if sequence and not spec.implicit_state and cfg.platform != "python":
        raise ConfigError(
            f"Triton's {cfg.platform} backend has no implicit state, which the realtime video graph needs",
            hint="use --triton-platform python --triton-runtime openvino (lle keeps the state per sequence)",
        )
    dtype, hw = ("TYPE_UINT8", [-1, -1, 3]) if io.frames else ("TYPE_FP32", [3, -1, -1])
    lines = [f'name: "{name}"', f'{spec.key}: "{spec.value}"']
    if cfg.platform != "python" and cc_filenames is None:
        lines.append(f'default_model_filename: "{filename}"')
    for cc, fname in (cc_filenames or {}).items():
        lines.append(f'cc_model_filenames {{ key: "{cc}" value: "{fname}" }}')
    if sequence:
        lines.append("max_batch_size: 0")
        lines += ["input [", f'  {{ name: "input" data_type: {dtype} dims: {_dims([1, *hw])} }},',
                  '  { name: "alpha" data_type: TYPE_FP32 dims: [ 1 ] }', "]",
                  f'output [ {{ name: "output" data_type: {dtype} dims: {_dims([1, *hw])} }} ]']
    else:
        batch = min(cfg.max_batch_size, io.max_batch or cfg.max_batch_size)
        lines.append(f"max_batch_size: {batch}")
        lines += [f'input [ {{ name: "input" data_type: {dtype} dims: {_dims(hw)} }} ]',
                  f'output [ {{ name: "output" data_type: {dtype} dims: {_dims(hw)} }} ]']
        if batch > 1:
            lines.append("dynamic_batching { }")
    if sequence:
        lines += ["sequence_batching {", f"  max_sequence_idle_microseconds: {int(cfg.sequence_idle_s * 1e6)}",
                  f"  oldest {{ max_candidate_sequences: {cfg.max_sequences} }}"]
        if cfg.platform == "python":
            lines += ["  control_input [",
                      '    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },',
                      '    { name: "END" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] }',
                      "  ]"]
        else:
            state = _dims([1, *io.state_shape])  # type: ignore[misc]
            lines += ["  state [ {", '    input_name: "state"', '    output_name: "state_out"',
                      "    data_type: TYPE_FP32", f"    dims: {state}",
                      f'    initial_state {{ name: "zeros" data_type: TYPE_FP32 dims: {state} zero_data: true }}',
                      "  } ]"]
        lines.append("}")
    lines.append(f"instance_group [ {{ kind: {DEVICES[cfg.device]} count: {cfg.instances} }} ]")
    if cfg.ort_tensorrt:
        mode = {"fp16": "FP16", "int8": "INT8"}.get(cfg.precision, "FP32")
        lines += ["optimization { execution_accelerators { gpu_execution_accelerator [ {",
                  '  name: "tensorrt"', f'  parameters {{ key: "precision_mode" value: "{mode}" }}',
                  '  parameters { key: "max_workspace_size_bytes" value: "1073741824" }', "} ] } }"]
    params = [_param("lle.preset", io.preset), _param("lle.size_multiple", str(io.size_multiple))]
    if io.state_shape is not None:
        params.append(_param("lle.state_shape", ",".join(str(d) for d in io.state_shape)))
    if cfg.platform == "python":
        params += [_param("lle.runtime", cfg.runtime), _param("lle.artifact", filename),
                   _param("lle.threads", str(cfg.threads)), _param("lle.device", "auto" if cfg.device == "gpu" else
                                                                   "cpu")]
    lines += ["parameters [", ",\n".join(params), "]"]
    return "\n".join(lines) + "\n"


def parse_config(text: str) -> Any:
    """Parse config.pbtxt text with tritonclient's ``model_config`` protobuf (a structural check).

    Raises:
        MissingDependencyError: tritonclient (gRPC) is not installed.
        ExportError: the text is not a valid ModelConfig.
    """
    from lle._lazy import require

    pb2 = require("tritonclient.grpc.model_config_pb2", extra="triton")
    text_format = require("google.protobuf.text_format", extra="triton")
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as err:
        raise ExportError(f"generated config.pbtxt does not parse as a Triton ModelConfig: {err}") from err


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _files_of(artifact: Path) -> list[Path]:
    """The artifact, its weights (OpenVINO .bin) and its manifest."""
    out = [artifact]
    if artifact.suffix == ".xml":
        out.append(artifact.with_suffix(".bin"))
    out.append(artifact.with_name(artifact.name + ".json"))
    return [p for p in out if p.is_file()]


def write_model(artifacts: Sequence[Path], repo: Path, cfg: TritonConfig, *, name: str | None = None) -> Path:
    """Write ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/`` serving ``artifacts``; returns the model folder.

    One artifact, except for TensorRT: one ``.plan`` per GPU architecture, named by compute capability from each
    engine's sidecar (``cc_model_filenames``). ``name`` defaults to ``<preset>_<platform>``. For ``python`` the
    model file is :mod:`lle.serve.triton_model`.

    Raises:
        InputError: missing artifact or manifest, wrong file type for the platform, or a bad model name.
        ConfigError: the platform cannot serve this graph.
        ExportError: the config does not parse.
    """
    spec = cfg.spec
    paths = [Path(a) for a in artifacts]
    if not paths or (len(paths) > 1 and cfg.platform != "tensorrt"):
        raise InputError(f"the {cfg.platform} platform serves exactly one artifact, got {len(paths)}",
                         hint="several artifacts only for tensorrt (one .plan per GPU architecture)")
    for p in paths:
        if p.suffix.lower() not in spec.suffixes:
            raise InputError(f"the {cfg.platform} platform serves {'/'.join(spec.suffixes)} files, got {p.name}",
                             hint=f"export with --format {spec.export_format}")
    if cfg.platform == "python" and paths[0].suffix.lower() == ".xml" and cfg.runtime != "openvino":
        raise InputError(f"{paths[0].name} is OpenVINO IR; the python model's runtime is {cfg.runtime}",
                         hint="add --triton-runtime openvino")
    ios = [artifact_io(p) for p in paths]
    io = ios[0]
    name = name or f"{io.preset}_{cfg.platform}"
    if not _NAME.match(name):
        raise InputError(f"model name {name!r} is not a valid Triton model name",
                         hint="letters, digits, '_', '-' and '.', starting with a letter or digit")
    cc_files: dict[str, str] | None = None
    files: list[tuple[Path, str]] = []
    if cfg.platform == "tensorrt":
        from lle.export.trt_meta import read_sidecar

        cc_files = {}
        for p in paths:
            cc = read_sidecar(p).env.compute_capability
            if cc == "unknown" or cc in cc_files:
                raise InputError(f"{p.name}: compute capability {cc!r} " + ("is unknown" if cc == "unknown" else
                                 "appears twice"), hint="one engine per GPU architecture, each with its sidecar")
            cc_files[cc] = f"model_{cc}.plan"
            files += [(p, cc_files[cc]), (p.with_name(p.name + ".json"), cc_files[cc] + ".json")]
        filename = next(iter(cc_files.values()))
    else:
        filename = "model" + paths[0].suffix.lower()
        files = [(f, filename + f.name[len(paths[0].name):]) if f.name.startswith(paths[0].name)
                 else (f, "model.bin") for f in _files_of(paths[0])]
    text = model_config(name, io, cfg, filename=filename, cc_filenames=cc_files)
    parse_config(text)
    folder = Path(repo) / name
    version = folder / "1"
    for src, dst in files:
        _copy_atomic(src, version / dst)
    if cfg.platform == "python":
        # the Python model's source, read as a file beside this module (importing it would tie the two together)
        atomic_write_bytes(version / "model.py", Path(__file__).with_name("triton_model.py").read_bytes())
    atomic_write_bytes(folder / "config.pbtxt", text.encode())
    log.info("wrote Triton model %s (%s) to %s", name, cfg.platform, folder)
    return folder


def repository_models(repo: Path) -> list[str]:
    """Names of the models in a Triton model repository (its folders that hold a ``config.pbtxt``), sorted.

    Raises:
        InputError: ``repo`` is missing, is a model folder rather than a repository, or holds no model.
    """
    repo = Path(repo)
    fix = "write one with: lle export --format triton -o REPO"
    if not repo.is_dir():
        raise InputError(f"model repository not found: {repo}", hint=fix)
    if (repo / "config.pbtxt").is_file():
        raise InputError(f"{repo} is a model folder, not a model repository", hint=f"pass its parent: {repo.parent}")
    names = sorted(d.name for d in repo.iterdir() if (d / "config.pbtxt").is_file())
    if not names:
        raise InputError(f"no models in {repo} (no <model>/config.pbtxt)", hint=fix)
    return names
