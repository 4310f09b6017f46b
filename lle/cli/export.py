"""``lle export``: weights -> ONNX / OpenVINO / ONNX INT8 (Q/DQ) / TensorRT, each checked against PyTorch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lle.cli._common import check_preset, cli_errors, default_weights, err_console, out_console, progress_bar
from lle.errors import ConfigError
from lle.presets import PRESETS

if TYPE_CHECKING:
    from lle.export import ExportResult
    from lle.export.config import ExportConfig

__all__ = ["CalibMethod", "Format", "Precision", "parse_hw", "register"]


class Format(str, Enum):
    onnx = "onnx"
    openvino = "openvino"
    onnx_int8 = "onnx-int8"
    tensorrt = "tensorrt"
    triton = "triton"


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


class GraphIO(str, Enum):
    auto = "auto"
    uint8 = "uint8"
    i420 = "i420"
    float32 = "float32"


class CalibMethod(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


def parse_hw(value: str | None, flag: str) -> tuple[int, int] | None:
    """``"720x1280"`` -> (720, 1280); ``None`` stays ``None``.

    Raises:
        ConfigError: not two positive integers joined by ``x``.

    Example:
        >>> parse_hw("720x1280", "--opt-hw")
        (720, 1280)
    """
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"{flag} {value!r} is not HEIGHTxWIDTH", hint=f"e.g. {flag} 720x1280")
    return int(parts[0]), int(parts[1])


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@cli_errors
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the artifacts and manifests.")],
    fmt: Annotated[Format | None, typer.Option("--format", help="Artifact format (default: the profile's).")] = None,
    precision: Annotated[
        Precision | None, typer.Option(help="fp32, fp16 or int8 (default: the profile's; int8 for onnx-int8).")
    ] = None,
    preset: Annotated[
        str, typer.Option(callback=check_preset, help=f"Bundled weights to export: {' | '.join(PRESETS)}.")
    ] = "quality",
    weights: Annotated[
        Path | None, typer.Option(help="Weights (.safetensors + .json card) instead of a preset's.")
    ] = None,
    calib: Annotated[
        Path | None, typer.Option(help="Folder of calibration images (INT8), e.g. calibration_data/images.")
    ] = None,
    profile: Annotated[Path | None, typer.Option(help="Deployment profile, e.g. export/jetson-orin-nano.toml.")] = None,
    calib_n: Annotated[int | None, typer.Option(help="Number of calibration images.")] = None,
    calib_method: Annotated[CalibMethod | None, typer.Option(help="Range estimation for the ONNX Q/DQ model.")] = None,
    calib_hw: Annotated[
        str | None, typer.Option(help="Calibration size HxW (default: the deployment --opt-hw).")
    ] = None,
    mixed: Annotated[
        bool | None,
        typer.Option("--mixed/--no-mixed", help="INT8: keep the convolutions INT8 hurts most in float until the "
                     "INT8 model reaches --min-psnr + 5 dB against FP32 on probe images (default: on)."),
    ] = None,
    min_hw: Annotated[str | None, typer.Option(help="Smallest input HxW (TensorRT profile).")] = None,
    opt_hw: Annotated[str | None, typer.Option(help="Deployment input HxW: TensorRT tuning and calibration.")] = None,
    max_hw: Annotated[str | None, typer.Option(help="Largest input HxW (TensorRT profile).")] = None,
    min_psnr: Annotated[float | None, typer.Option(help="INT8 check: minimum PSNR (dB) vs FP32 torch output.")] = None,
    workspace_mib: Annotated[int | None, typer.Option(help="TensorRT builder workspace limit (MiB).")] = None,
    opt_level: Annotated[int | None, typer.Option(help="TensorRT builder optimization level 0-5.")] = None,
    timing_cache: Annotated[Path | None, typer.Option(help="TensorRT timing cache to reuse and update.")] = None,
    dla_core: Annotated[int | None, typer.Option(help="Jetson DLA core (GPU fallback on), -1 for GPU only.")] = None,
    ov_cache_dir: Annotated[Path | None, typer.Option(help="OpenVINO model cache folder for the check run.")] = None,
    io: Annotated[
        GraphIO | None, typer.Option("--io", help="Graph I/O: uint8 = NHWC BGR frames straight from the decoder, "
                              "any size (cast, scale, pad, round and clip inside the graph); float32 = NCHW RGB "
                              "in [0, 1]; i420 = realtime only, planar 4:2:0 video frames (N, H*3/2, W) as PyAV "
                              "decodes them, no colour conversion (the fastest for video; `lle run` of a video "
                              "uses it); auto = uint8 for realtime ONNX/OpenVINO FP32/FP16, else float32.")
    ] = None,
    triton_platform: Annotated[
        str, typer.Option(help="--format triton: comma-separated serving platforms: python (lle's own backend "
                          "inside Triton's Python backend), onnxruntime, openvino, tensorrt.")
    ] = "python",
    triton_runtime: Annotated[
        str, typer.Option(help="--format triton, python platform: the lle backend it runs (onnxruntime, openvino).")
    ] = "onnxruntime",
    triton_device: Annotated[str, typer.Option(help="--format triton: instance kind, cpu or gpu.")] = "cpu",
    triton_instances: Annotated[int, typer.Option(min=1, help="--format triton: model instances.")] = 1,
    triton_ort_tensorrt: Annotated[
        bool, typer.Option(help="--format triton, onnxruntime on gpu: add the TensorRT execution accelerator.")
    ] = False,
    model_name: Annotated[
        str | None, typer.Option(help="--format triton: model name (default <preset>_<platform>; one platform).")
    ] = None,
    artifact: Annotated[
        list[Path] | None, typer.Option(help="--format triton: serve this exported artifact (with its .json) instead "
                                        "of exporting; repeat for one TensorRT .plan per GPU architecture.")
    ] = None,
) -> None:
    """Export weights to a deployable artifact and check it against PyTorch (summary table on stdout).

    INT8 needs calibration images that look like deployment data (see calibration_data/README.md). Calibration runs
    at the deployment resolution (--opt-hw or the profile's input.opt_hw).

    --format triton writes a Triton Inference Server model repository into -o: one model per --triton-platform
    (config.pbtxt + 1/<artifact>), the realtime video graph as a sequence model that keeps its state per stream.
    """
    from lle.export.config import ExportConfig, load_profile, with_overrides

    w = default_weights(preset, weights)
    base = load_profile(profile) if profile is not None else ExportConfig()
    fmt_value = fmt.value if fmt is not None else (base.format if profile is not None else None)
    if fmt_value is None:
        raise ConfigError("no export format given",
                          hint="pass --format onnx|openvino|onnx-int8|tensorrt|triton or --profile")
    prec = precision.value if precision else ("int8" if fmt_value == "onnx-int8" else
                                              base.precision if profile is not None else "fp32")
    triton = _triton_configs(fmt_value, prec, triton_platform, triton_runtime, triton_device, triton_instances,
                             triton_ort_tensorrt, model_name, artifact)
    if triton and artifact:
        _write_triton(artifact, out, triton[0], model_name)
        return

    def build(fmt_name: str) -> ExportConfig:
        return with_overrides(
            base, format=fmt_name, precision=prec, min_psnr=min_psnr,
            input__min_hw=parse_hw(min_hw, "--min-hw"), input__opt_hw=parse_hw(opt_hw, "--opt-hw"),
            input__max_hw=parse_hw(max_hw, "--max-hw"),
            calibration__n=calib_n, calibration__method=calib_method.value if calib_method else None,
            calibration__hw=parse_hw(calib_hw, "--calib-hw"), calibration__mixed=mixed,
            tensorrt__workspace_mib=workspace_mib, tensorrt__opt_level=opt_level, tensorrt__dla_core=dla_core,
            tensorrt__timing_cache=str(timing_cache) if timing_cache else None,
            openvino__cache_dir=str(ov_cache_dir) if ov_cache_dir else None,
            io=io.value if io is not None else None,
        )  # fmt: skip

    if not triton:
        _run_export(w, build(fmt_value), out, calib)
        return
    import tempfile

    for t in triton:
        # Exported into a temp folder: every folder in a Triton repository is taken for a model.
        with tempfile.TemporaryDirectory(prefix="lle-triton-export-") as tmp:
            result = _run_export(w, build(t.export_format), Path(tmp), calib)
            _write_triton([result.final], out, t, model_name)


def _triton_configs(fmt: str, precision: str, platforms: str, runtime: str, device: str, instances: int,
                    ort_tensorrt: bool, model_name: str | None, artifact: list[Path] | None) -> list[Any]:
    """One :class:`~lle.serve.repository.TritonConfig` per ``--triton-platform`` (none unless --format triton).

    Raises:
        ConfigError: triton-only flags without --format triton, no platform, or one-platform flags with several.
    """
    if fmt != "triton":
        if artifact or model_name:
            raise ConfigError("--artifact and --model-name are for --format triton", hint="add --format triton")
        return []
    from lle.serve.repository import TritonConfig

    names = [p.strip() for p in platforms.split(",") if p.strip()]
    if not names:
        raise ConfigError("--triton-platform names no platform", hint="e.g. --triton-platform python,onnxruntime")
    if (model_name or artifact) and len(names) > 1:
        raise ConfigError("--model-name and --artifact are for one --triton-platform at a time",
                          hint="run lle export once per platform")
    return [TritonConfig(platform=p, runtime=runtime, device=device, instances=instances, ort_tensorrt=ort_tensorrt,
                         precision=precision) for p in names]


def _run_export(w: Path, cfg: ExportConfig, out: Path, calib: Path | None) -> ExportResult:
    from lle.export import export_model, resolve_target
    from lle.export.calibration import CalibrationSet
    from lle.models.checkpoint import load_card

    target = resolve_target(cfg.format, cfg.precision)
    needs_calib = cfg.precision == "int8"
    if needs_calib and calib is None:
        raise ConfigError(f"{target} needs calibration images", hint="pass --calib calibration_data/images or your own")
    calib_set = None
    if calib is not None:
        c = cfg.calibration
        calib_set = CalibrationSet.from_dir(calib, n=c.n, hw=cfg.calib_hw, multiple=load_card(w).size_multiple,
                                            seed=c.seed, holdout=c.holdout)
    with progress_bar(f"export {target}", 1) as bar:
        task = bar.task_ids[0]

        def _progress(done: float, total: int, step: str) -> None:
            bar.update(task, completed=done, total=total, info=step)

        result = export_model(w, target, out, cfg, calib_set, progress=_progress)
    table = Table(title=f"lle export {target} -> {escape(str(out))}")
    for col in ("step", "artifact", "size", "parity", "time"):
        table.add_column(col, justify="right" if col in ("size", "time") else "left")
    for a in result.artifacts:
        table.add_row(a.step, escape(a.path.name), _human(a.size_bytes), a.parity, f"{a.seconds:.1f} s")
    out_console.print(table)
    err_console.print(f"wrote {escape(str(result.final))}", highlight=False)
    return result


def _write_triton(artifacts: list[Path], repo: Path, cfg: Any, name: str | None) -> None:
    from lle.serve.repository import write_model

    folder = write_model(artifacts, repo, cfg, name=name)
    out_console.print(f"Triton model {escape(folder.name)} ({cfg.platform}) -> {escape(str(folder))}",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
