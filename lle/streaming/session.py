"""One call for ``lle run``: open the source, the sinks and the backend, run the pipeline, close everything."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lle.backends.base import Precision
from lle.errors import InputError
from lle.io.image import IMAGE_SUFFIXES
from lle.io.sinks import FOURCC, FolderSink, ImageFileSink, Sink, VideoFileSink, WindowSink
from lle.io.sources import Frame, ImageSource, Source, open_source
from lle.streaming.runner import StreamResult, StreamRunner

if TYPE_CHECKING:
    from lle.runtime_pick import Choice

__all__ = ["DEFAULT_LIVE_FPS", "NullSink", "open_sinks", "run_stream"]

log = logging.getLogger(__name__)

DEFAULT_LIVE_FPS = 30.0


class NullSink(Sink):
    """Discards frames (measuring speed, or ``--show`` only)."""

    takes_i420 = True

    def write(self, frame: Frame, image: np.ndarray) -> None:
        return None


def open_sinks(
    output: Path | None, source: Source, *, show: bool = False, encoder_preset: str = "ultrafast",
    codec_threads: int = 0,
) -> list[Sink]:
    """Sinks for ``output`` given ``source``.

    A video/stream/camera source writes a video file when ``output`` ends in a video suffix (fps of the source;
    30 for live sources that do not report one), else PNG frames into the folder ``output``. Image sources write
    one image file (single image, image suffix) or a folder (names and formats kept). ``None`` writes nothing.
    With PyAV, video is H.264 at x264 ``encoder_preset`` (``ultrafast`` leaves the CPU to the model: 80 FPS
    decode+encode at 1080p on 2 cores, against 36 for ``veryfast``).

    Raises:
        InputError: unsupported suffix, output that is the source itself.
    """
    sinks: list[Sink] = []
    if output is not None:
        suffix = output.suffix.lower()
        src_path = getattr(source, "path", None)
        if src_path is not None and output.exists() and output.resolve() == Path(src_path).resolve():
            raise InputError(f"refusing to overwrite the source {output}", hint="choose another -o/--output")
        if suffix in FOURCC:
            fps = source.fps
            if fps is None:
                fps = DEFAULT_LIVE_FPS
                log.info("%s reports no frame rate; writing %s at %g fps", source.description, output, fps)
            from lle.io.av_video import AV_SUFFIXES, AvVideoSink, AvVideoSource, have_av

            if have_av() and suffix in AV_SUFFIXES:
                if isinstance(source, AvVideoSource):
                    sinks.append(AvVideoSink(output, source.rate or fps, rotation=source.rotation,
                                             audio_from=source.path if source.has_audio else None,
                                             preset=encoder_preset, threads=codec_threads))
                else:
                    sinks.append(AvVideoSink(output, fps, preset=encoder_preset, threads=codec_threads))
            else:
                if source.is_video:
                    log.info("audio tracks (if any) are not copied to %s: OpenCV writes video only "
                             "(pip install 'lle[video]' for H.264 with audio)", output)
                sinks.append(VideoFileSink(output, fps))
        elif suffix in IMAGE_SUFFIXES and source.total == 1 and not source.live and not output.is_dir():
            sinks.append(ImageFileSink(output))
        elif suffix and not output.is_dir():
            raise InputError(
                f"cannot write {suffix!r} output {output}",
                hint=f"use a folder, a video ({', '.join(FOURCC)}) or, for one image, an image suffix",
            )
        else:
            sinks.append(FolderSink(output))
    if show:
        sinks.append(WindowSink())
    return sinks or [NullSink()]


def run_stream(
    model: Path, source: str, output: Path | None = None, *, backend: str = "auto", device: str = "auto",
    precision: Precision = "fp32", show: bool = False, compare: bool = False, smoothing: float = 0.85,
    encoder_preset: str = "ultrafast", codec_threads: int = 0, stall_timeout: float | None = 30.0,
    backend_options: dict[str, Any] | None = None, progress: Callable[[int, int | None, float], None] | None = None,
    on_start: Callable[[Source, Any], None] | None = None,
) -> StreamResult:  # fmt: skip
    """Enhance every frame of ``source`` (see :func:`lle.io.sources.open_source`) with ``model`` into ``output``.

    ``model`` is an artifact or weights file, or a preset name (see :func:`lle.presets.resolve_model`). A preset
    name with ``backend="auto"`` runs on the installed runtime that is fastest here for its graph at the source's
    frame size with these ``backend_options`` (threads): measured once, then cached (:mod:`lle.runtime_pick`); the
    result's ``backend_choice`` says which and why.

    ``on_start(source, backend)`` is called once both are open (the CLI prints what runs where).
    ``stall_timeout``: seconds one read of the source may take before the run stops with an error (None: no limit).

    Raises:
        InputError: bad source or output.
        ConfigError / MissingDependencyError / BackendError: backend cannot be used for ``model``.
    """
    from lle.backends.registry import auto_backend, backend_class
    from lle.presets import resolve_model

    with open_source(source, codec_threads=codec_threads) as src:
        choices: list[Choice] = []

        def picker(artifact: Path, runtimes: tuple[str, ...]) -> str:
            choice = _pick_runtime(artifact, runtimes, src, device, precision, backend_options)
            choices.append(choice)
            return choice.backend

        model, backend, preset_opts = resolve_model(model, backend, video=src.is_video or src.live, picker=picker)
        opts = _backend_options(backend, Path(model), {**preset_opts, **(backend_options or {})})
        name = auto_backend(Path(model)) if backend == "auto" else backend
        be = backend_class(name)(Path(model), device=device, precision=precision, **opts)
        sinks = open_sinks(output, src, show=show, encoder_preset=encoder_preset, codec_threads=codec_threads)
        with be:
            if on_start is not None:
                on_start(src, be)
            runner = StreamRunner(be, src, sinks, smoothing=smoothing, compare=compare, progress=progress,
                                  stall_timeout=stall_timeout)
            result = runner.run()
        if choices:
            result = dataclasses.replace(result, backend_choice=f"{choices[0].backend} ({choices[0].describe()})")
        return result


def _backend_options(backend: str, model: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """The constructor options ``backend`` runs ``model`` with: ``opts``, plus OpenVINO's latency hint."""
    if backend in {"openvino", "ov"} or (backend == "auto" and model.suffix.lower() == ".xml"):
        opts = {**opts, "hint": opts.get("hint", "latency")}
    return opts


def _frame_size(src: Source) -> tuple[int, int] | None:
    """(width, height) of the source's frames: as it reports them, or (image sources) of its first image."""
    if src.size:
        return src.size
    if isinstance(src, ImageSource) and src.paths:
        import cv2

        img = cv2.imread(str(src.paths[0]), cv2.IMREAD_COLOR)
        if img is not None:
            return img.shape[1], img.shape[0]
    return None


def _pick_runtime(
    artifact: Path, runtimes: tuple[str, ...], src: Source, device: str, precision: Precision,
    backend_options: dict[str, Any] | None,
) -> Choice:  # fmt: skip
    """:func:`lle.runtime_pick.choose_runtime` for ``artifact`` on ``src``'s frames, with the run's own options."""
    from lle.runtime_pick import Choice, Setup, choose_runtime

    size = _frame_size(src)
    if size is None:
        log.info("%s does not report its frame size: running %s unmeasured", src.description, runtimes[0])
        return Choice(runtimes[0], "unmeasured", note=f"frame size unknown; first installed of {', '.join(runtimes)}")
    options = {name: _backend_options(name, artifact, dict(backend_options or {})) for name in runtimes}
    return choose_runtime(artifact, runtimes, Setup(size, options, device=device, precision=precision))
