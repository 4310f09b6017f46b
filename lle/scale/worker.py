"""What one batch worker runs: a backend loaded once, then image and video jobs, each written atomically.

:class:`EnhanceWorker` is the callable class Ray Data's ``map_batches`` instantiates once per actor; it imports no
Ray, so it also runs (and is tested) in-process. Images go through :func:`lle.enhance.enhance_file`, exactly as
``lle enhance``; a video goes through the :class:`lle.streaming.StreamRunner` of ``lle run`` from its first frame to
its last, so the realtime model's temporal state is never split.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lle._atomic import temp_path_for
from lle.errors import ConfigError, InputError, LLEError
from lle.scale.jobs import Job, Kind

__all__ = ["EnhanceWorker", "WorkerConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How every worker enhances: the ``lle enhance`` options (weights, device, tile, threads) plus video options.

    ``threads``: torch CPU threads in each worker (0: torch's default). ``smoothing``, ``encoder_preset`` and
    ``codec_threads`` are those of ``lle run`` and apply to videos only.
    """

    weights: Path
    device: str = "auto"
    tile: int = 0
    threads: int = 0
    smoothing: float = 0.85
    encoder_preset: str = "ultrafast"
    codec_threads: int = 0

    def __post_init__(self) -> None:
        if self.threads < 0 or self.codec_threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads} and codec_threads {self.codec_threads}")
        if 0 < self.tile < 32:
            raise InputError(f"--tile {self.tile} is too small", hint="use 0 (automatic) or at least 32")
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError(f"smoothing must be in [0, 1), got {self.smoothing}")


def _one_line(err: Exception) -> str:
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    if isinstance(err, LLEError):
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class EnhanceWorker:
    """Loads the torch backend and its :class:`~lle.pipeline.Enhancer` once, then enhances batches of jobs.

    A batch is a mapping of equal-length columns ``src``, ``dst`` and ``kind`` (as Ray Data's numpy batches are);
    the result adds ``ok`` (bool), ``error`` (one line, empty when ok) and ``seconds`` per row. A failing file is
    reported in its row and the rest of the batch goes on.

    Raises:
        BackendError / InputError / ConfigError: the weights cannot be loaded or ``tile`` is invalid (at start).
    """

    def __init__(self, config: WorkerConfig) -> None:
        from lle.backends.torch_backend import TorchBackend
        from lle.enhance import make_enhancer

        self.config = config
        opts = {"threads": config.threads} if config.threads else {}
        self.backend = TorchBackend(Path(config.weights), device=config.device, **opts)
        self.backend.load()
        try:
            self.enhancer = make_enhancer(self.backend, config.tile)
        except BaseException:
            self.backend.close()
            raise
        log.info("worker %d: %s loaded on %s", os.getpid(), Path(config.weights).name, self.backend.device)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Enhance every row of ``batch``; see the class docstring for the columns."""
        out: dict[str, list[Any]] = {"src": [], "dst": [], "kind": [], "ok": [], "error": [], "seconds": []}
        for src, dst, kind in zip(batch["src"], batch["dst"], batch["kind"], strict=True):
            job = Job(Path(str(src)), Path(str(dst)), str(kind))  # type: ignore[arg-type]
            t0 = time.perf_counter()
            error = ""
            try:
                self.run(job)
            # A batch job reports each file that fails (unreadable, corrupt, unwritable, a codec error) and goes on
            # with the others; the error type and message go to the report.
            except Exception as err:  # noqa: BLE001
                error = _one_line(err)
                log.warning("%s failed: %s", job.src, error)
            for key, value in (("src", str(job.src)), ("dst", str(job.dst)), ("kind", job.kind), ("ok", not error),
                               ("error", error), ("seconds", time.perf_counter() - t0)):  # fmt: skip
                out[key].append(value)
        return out

    def run(self, job: Job) -> Path:
        """Enhance one job and return its output path (written atomically).

        Raises:
            InputError / BackendError / LLEError: the input cannot be read, enhanced or written.
        """
        kinds: dict[Kind, Any] = {"image": self._image, "video": self._video}
        if job.kind not in kinds:
            raise ConfigError(f"unknown job kind {job.kind!r}", hint=f"one of {', '.join(kinds)}")
        return kinds[job.kind](job.src, job.dst)

    def _image(self, src: Path, dst: Path) -> Path:
        from lle.enhance import enhance_file

        return enhance_file(src, dst, self.enhancer)

    def _video(self, src: Path, dst: Path) -> Path:
        from lle.io.sources import open_source
        from lle.streaming import StreamRunner, open_sinks

        c = self.config
        # The video sinks rename a finished file into place even when the run fails midway (``lle run`` keeps what
        # it got); a batch job must only ever show complete outputs, so the sink writes to a temp name first.
        tmp = temp_path_for(dst)
        try:
            with open_source(str(src), codec_threads=c.codec_threads) as source:
                sinks = open_sinks(tmp, source, encoder_preset=c.encoder_preset, codec_threads=c.codec_threads)
                StreamRunner(self.backend, source, sinks, smoothing=c.smoothing).run()
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dst

    def close(self) -> None:
        """Release the backend. Safe to call twice."""
        self.backend.close()
