"""The threaded video pipeline: capture -> pre-process -> infer -> post-process -> write, with bounded queues.

File sources process every frame in order (a full queue blocks the stage before it). Live sources keep only the
newest captured frame: when inference falls behind, stale frames are dropped at capture and counted. Stopping
(Ctrl-C, a closed window, :attr:`StreamRunner.stop`) ends capture; frames already in flight are still written and the
sinks are finalised, so a video file is always playable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from lle.backends.base import Backend
from lle.io.sinks import Sink, WindowSink
from lle.io.sources import Frame, Source
from lle.pipeline import Enhancer
from lle.streaming.temporal import TemporalSmoother

__all__ = ["STAGES", "StageStats", "StreamResult", "StreamRunner", "from_blob", "to_blob"]

log = logging.getLogger(__name__)

STAGES = ("capture", "pre", "infer", "post", "write")
_END = object()


def to_blob(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR uint8 -> (1, 3, H, W) RGB float32 in [0, 1], in one OpenCV pass (faster than numpy)."""
    return cv2.dnn.blobFromImage(image, scalefactor=1.0 / 255.0, swapRB=True)


def from_blob(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) RGB float32 in [0, 1] -> (H, W, 3) BGR uint8, rounded to nearest, saturated."""
    planes = [cv2.convertScaleAbs(np.ascontiguousarray(x[0, c]), alpha=255.0) for c in (2, 1, 0)]
    return cv2.merge(planes)


@dataclass(frozen=True, slots=True)
class StageStats:
    """Per-frame time of one stage, milliseconds."""

    mean_ms: float
    p50_ms: float
    p90_ms: float
    frames: int


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What a run did: frames written, frames dropped (live sources), wall time, stage timings, scene cuts."""

    frames: int
    dropped: int
    seconds: float
    stages: dict[str, StageStats] = field(default_factory=dict)
    interrupted: bool = False
    scene_cuts: int = 0

    @property
    def fps(self) -> float:
        """Frames written per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class _Item:
    frame: Frame
    blob: Any = None
    alpha: float = 0.0
    out: Any = None


class StreamRunner:
    """Runs ``backend`` over ``source`` into ``sinks``.

    Args:
        backend: a loaded backend. Stateful (realtime video) artifacts are run with :meth:`Backend.infer_stateful`
            and the coefficient state is carried from frame to frame.
        smoothing: ``alpha`` of the :class:`TemporalSmoother` (0 disables smoothing; ignored for stateless models).
        compare: write input and output side by side (output width doubles).
        queue_size: capacity of each inter-stage queue (file sources).
        progress: called as ``progress(frames_written, total_or_None, fps)`` after every written frame.
    """

    def __init__(
        self, backend: Backend, source: Source, sinks: Sequence[Sink], *, smoothing: float = 0.85,
        scene_cut: float = 0.1, compare: bool = False, queue_size: int = 4,
        progress: Callable[[int, int | None, float], None] | None = None,
    ) -> None:  # fmt: skip
        self.backend, self.source, self.sinks = backend, source, list(sinks)
        self.compare, self.progress = compare, progress
        self.smoother = TemporalSmoother(smoothing, scene_cut) if backend.stateful else None
        # Frame artifacts (uint8 NHWC BGR in and out) take the decoded frame as it is: no conversion, no padding.
        self.frames = backend.input_spec.frames
        self.enhancer = Enhancer(self._infer_raw, backend.input_spec.size_multiple)
        self._state: np.ndarray | None = None
        self._alpha = 0.0
        self.stop = threading.Event()
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1 if source.live else queue_size) for _ in range(4)]
        self._times: dict[str, list[float]] = {s: [] for s in STAGES}
        self._error: BaseException | None = None
        self.dropped = 0

    # -- stages ------------------------------------------------------------------------------------------------
    def _infer_raw(self, batch: np.ndarray) -> np.ndarray:
        if self.smoother is None:
            return self.backend.infer(batch)
        if self._state is None or self._alpha == 0.0:
            self._state = self.backend.zero_state(batch.shape[0])
        out, self._state = self.backend.infer_stateful(batch, self._state, self._alpha)
        return out

    def _pre(self, item: _Item) -> _Item:
        img = item.frame.image
        item.blob = np.ascontiguousarray(img)[None] if self.frames else to_blob(img)
        if self.smoother is not None:
            item.alpha = self.smoother.alpha_for(item.frame.image)
        return item

    def _infer(self, item: _Item) -> _Item:
        self._alpha = item.alpha
        item.out = self._infer_raw(item.blob) if self.frames else self.enhancer(item.blob)
        item.blob = None
        return item

    def _post(self, item: _Item) -> _Item:
        out = item.out[0] if self.frames else from_blob(item.out)
        item.out = np.hstack([item.frame.image, out]) if self.compare else out
        return item

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _put(self, q: queue.Queue[Any], obj: Any) -> bool:
        """Blocking put that gives up after an error; the end marker is always delivered (evicting an item)."""
        while True:
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                if self._error is None:
                    continue
                if obj is not _END:
                    return False
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass

    def _capture(self) -> None:
        q = self._queues[0]
        try:
            it: Iterator[Frame] = iter(self.source)
            while not self.stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                self._times["capture"].append(time.perf_counter() - t0)
                item = _Item(frame)
                if not self.source.live:
                    if not self._put(q, item):
                        return
                    continue
                try:
                    q.put_nowait(item)
                except queue.Full:
                    try:
                        q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    q.put_nowait(item)
        except BaseException as err:  # noqa: BLE001  (re-raised in the calling thread)
            self._error = err
        finally:
            self._put(q, _END)

    def _stage(self, name: str, fn: Callable[[_Item], _Item], qin: queue.Queue[Any], qout: queue.Queue[Any]) -> None:
        try:
            while True:
                item = qin.get()
                if item is _END:
                    break
                if self._error is not None:
                    continue  # drain so upstream never blocks
                t0 = time.perf_counter()
                item = fn(item)
                self._times[name].append(time.perf_counter() - t0)
                if not self._put(qout, item):
                    break
        except BaseException as err:  # noqa: BLE001  (re-raised in the calling thread)
            self._error = err
            self.stop.set()
            while qin.get() is not _END:
                pass
        finally:
            self._put(qout, _END)

    def run(self) -> StreamResult:
        """Run until the source ends or :attr:`stop` is set. Ctrl-C stops capture and finishes cleanly.

        Raises:
            LLEError: from the source, backend or sinks (after the sinks were finalised).
        """
        q = self._queues
        threads = [threading.Thread(target=self._capture, name="lle-capture", daemon=True)]
        for i, (name, fn) in enumerate((("pre", self._pre), ("infer", self._infer), ("post", self._post))):
            threads.append(threading.Thread(target=self._stage, args=(name, fn, q[i], q[i + 1]),
                                            name=f"lle-{name}", daemon=True))
        t_start = time.perf_counter()
        for t in threads:
            t.start()
        written, interrupted = 0, False
        total = None if self.source.live else self.source.total
        try:
            while True:
                try:
                    item = q[3].get(timeout=0.1)
                except queue.Empty:
                    continue
                except KeyboardInterrupt:
                    interrupted = True
                    self.stop.set()
                    continue
                if item is _END:
                    break
                try:
                    t0 = time.perf_counter()
                    for sink in self.sinks:
                        sink.write(item.frame, item.out)
                    self._times["write"].append(time.perf_counter() - t0)
                except BaseException as err:
                    if isinstance(err, KeyboardInterrupt):
                        interrupted = True
                        self.stop.set()
                        continue
                    self._error = err
                    self.stop.set()
                    continue
                written += 1
                if any(isinstance(s, WindowSink) and s.closed_by_user for s in self.sinks):
                    self.stop.set()
                if self.progress is not None:
                    dt = time.perf_counter() - t_start
                    self.progress(written, total, written / dt if dt > 0 else 0.0)
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=5.0)
            self.source.close()
            for sink in self.sinks:
                sink.close()
        seconds = time.perf_counter() - t_start
        if self._error is not None:
            raise self._error
        if self.dropped:
            log.info("dropped %d stale frame(s) to keep up with %s", self.dropped, self.source.description)
        stages = {k: _stats(v) for k, v in self._times.items() if v}
        cuts = self.smoother.cuts if self.smoother else 0
        return StreamResult(written, self.dropped, seconds, stages, interrupted, cuts)


def _stats(times: list[float]) -> StageStats:
    a = np.asarray(times) * 1000.0
    return StageStats(float(a.mean()), float(np.percentile(a, 50)), float(np.percentile(a, 90)), len(a))
