"""The threaded video pipeline: capture -> pre-process -> infer -> post-process -> write, with bounded queues.

File sources process every frame in order (a full queue blocks the stage before it). Live sources keep only the
newest captured frame: when inference falls behind, stale frames are dropped at capture and counted. Stopping
(Ctrl-C, a closed window, :attr:`StreamRunner.stop`) ends capture; frames already in flight are still written and the
sinks are finalised, so a video file is always playable.

Faults end a run cleanly, never by hanging: every wait has a timeout. A source that delivers no frame for
``stall_timeout`` seconds, or raises, stops the run with an error naming it and the frames already written; SIGTERM
(on the main thread) stops it like Ctrl-C; a sink that cannot write (disk full) stops it with that error. In every
case the frames done are written and the sinks finalised.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from lle.backends.base import Backend
from lle.errors import InputError, LLEError
from lle.io.frames import bgr_to_i420, is_i420, to_bgr
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
    signal: str | None = None
    """``"SIGINT"`` or ``"SIGTERM"`` when a signal stopped the run (``interrupted`` is then True)."""
    backend_choice: str = ""
    """Which runtime ``auto`` picked for a preset and why (``openvino (measured: openvino 41.0 ms, ...)``), or ""."""

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
    hw: tuple[int, int] | None = None  # (H, W) of a BGR frame converted to I420 (padded when odd)


class StreamRunner:
    """Runs ``backend`` over ``source`` into ``sinks``.

    Args:
        backend: a loaded backend. Stateful (realtime video) artifacts are run with :meth:`Backend.infer_stateful`
            and the coefficient state is carried from frame to frame.
        smoothing: ``alpha`` of the :class:`TemporalSmoother` (0 disables smoothing; ignored for stateless models).
        compare: write input and output side by side (output width doubles).
        queue_size: capacity of each inter-stage queue (file sources).
        progress: called as ``progress(frames_written, total_or_None, fps)`` after every written frame.
        stall_timeout: seconds one read of the source may take before the run stops with an error (None: wait).
    """

    def __init__(
        self, backend: Backend, source: Source, sinks: Sequence[Sink], *, smoothing: float = 0.85,
        scene_cut: float = 0.1, compare: bool = False, queue_size: int = 4,
        progress: Callable[[int, int | None, float], None] | None = None, stall_timeout: float | None = 30.0,
    ) -> None:  # fmt: skip
        self.backend, self.source, self.sinks = backend, source, list(sinks)
        self.compare, self.progress = compare, progress
        self.smoother = TemporalSmoother(smoothing, scene_cut) if backend.stateful else None
        # Frame artifacts (uint8 NHWC BGR in and out) take the decoded frame as it is: no conversion, no padding.
        self.frames = backend.input_spec.frames
        # I420 artifacts: the source decodes to I420 when it can (no BGR conversion); sinks that take I420 get the
        # output as it is, the others (and side-by-side output) get it converted to BGR.
        self.i420 = backend.input_spec.i420
        self.raw = backend.input_spec.raw_frames
        if self.i420:
            source.want_i420()
        self.sink_i420 = not compare and all(s.takes_i420 for s in self.sinks)
        self.enhancer = Enhancer(self._infer_raw, backend.input_spec.size_multiple)
        self._state: np.ndarray | None = None
        self._alpha = 0.0
        self.stop = threading.Event()
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1 if source.live else queue_size) for _ in range(4)]
        self._times: dict[str, list[float]] = {s: [] for s in STAGES}
        self._error: BaseException | None = None
        self.dropped = 0
        self.stall_timeout = stall_timeout
        self._reading_since: float | None = None  # when the capture thread entered a source read (None: not in one)
        self._captured = 0
        self._signal: str | None = None
        # A source that fails or stalls ends the stream: frames already captured are still enhanced and written,
        # then this error is raised. (A backend or sink error stops at once: ``_error``.)
        self._source_error: LLEError | None = None
        self._stall_declared = False

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
        if self.i420 and not is_i420(img):
            img, item.hw = bgr_to_i420(img)
        item.blob = np.ascontiguousarray(img)[None] if self.raw else to_blob(img)
        if self.smoother is not None:
            item.alpha = self.smoother.alpha_for(item.frame.image)
        return item

    def _infer(self, item: _Item) -> _Item:
        self._alpha = item.alpha
        item.out = self._infer_raw(item.blob) if self.raw else self.enhancer(item.blob)
        item.blob = None
        return item

    def _post(self, item: _Item) -> _Item:
        if self.i420:
            out = item.out[0]
            padded = item.hw is not None and (item.hw[0] % 2 or item.hw[1] % 2)
            if not self.sink_i420 or padded:
                out = to_bgr(out, item.hw)
        else:
            out = item.out[0] if self.frames else from_blob(item.out)
        item.out = np.hstack([to_bgr(item.frame.image), out]) if self.compare else out
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
                t0 = self._reading_since = time.perf_counter()
                frame = next(it, None)
                self._reading_since = None
                if frame is None or self._source_error is not None:  # ended, or declared stalled meanwhile
                    return
                self._captured += 1
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
            self._reading_since = None
            if isinstance(err, KeyboardInterrupt):
                self._error = err
            else:
                self._source_error = err if isinstance(err, LLEError) else InputError(
                    f"{self.source.description} failed after {self._captured} frame(s): {type(err).__name__}: {err}"
                )  # fmt: skip
        finally:
            if not self._stall_declared:
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
        restore = self._catch_signals()
        try:
            while True:
                try:
                    item = q[3].get(timeout=0.1)
                except queue.Empty:
                    self._check_stall()
                    continue
                except KeyboardInterrupt:
                    interrupted, self._signal = True, self._signal or "SIGINT"
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
                        interrupted, self._signal = True, self._signal or "SIGINT"
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
            deadline = time.monotonic() + 5.0
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            if not threads[0].is_alive():  # a source stuck in a read is left to the process exit, not closed under it
                self.source.close()
            close_error = self._close_sinks()
            restore()
        seconds = time.perf_counter() - t_start
        interrupted = interrupted or self._signal is not None
        error = self._error or self._source_error or close_error
        if error is not None:
            raise _with_frames_done(error, written, self.sinks) from None
        if self.dropped:
            log.info("dropped %d stale frame(s) to keep up with %s", self.dropped, self.source.description)
        stages = {k: _stats(v) for k, v in self._times.items() if v}
        cuts = self.smoother.cuts if self.smoother else 0
        return StreamResult(written, self.dropped, seconds, stages, interrupted, cuts, self._signal)

    def _check_stall(self) -> None:
        """When the source has been inside one read for longer than ``stall_timeout``: end the stream there.

        The stuck capture thread is abandoned (its frame, if it ever comes, is discarded); the end marker is sent in
        its place, so the frames already captured are still written.
        """
        since = self._reading_since
        if self._stall_declared or self.stall_timeout is None or since is None:
            return
        if time.perf_counter() - since < self.stall_timeout:
            return
        self._stall_declared = True
        self._source_error = InputError(
            f"{self.source.description} stalled: no frame for {self.stall_timeout:g} s after "
            f"{self._captured} frame(s)",
            hint="check the source; for a slow source raise --stall-timeout",
        )
        self.stop.set()
        self._put(self._queues[0], _END)

    def _catch_signals(self) -> Callable[[], None]:
        """Make SIGINT and SIGTERM set :attr:`stop` (main thread only); returns the function restoring the handlers.

        A flag, not a ``KeyboardInterrupt``: an exception raised at a random point of the main loop could leave a
        queue's lock held and hang the run.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: object) -> None:
            self._signal = self._signal or signal.Signals(signum).name
            self.stop.set()

        old: dict[int, Any] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, on_signal)
        except ValueError:
            pass

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore

    def _close_sinks(self) -> BaseException | None:
        """Finalise every sink (after an error: :meth:`Sink.abort`); returns the first error instead of raising it."""
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.abort() if self._error is not None or self._source_error is not None else sink.close()
            except Exception as err:  # noqa: BLE001  (every sink gets finalised; the first error is reported)
                first = first or err
                if self._error is None:
                    try:
                        sink.abort()  # keep what is playable of a video whose finalisation failed
                    except Exception as again:  # noqa: BLE001
                        log.debug("aborting %s: %s", sink, again)
        return first


def _with_frames_done(err: BaseException, written: int, sinks: Sequence[Sink]) -> BaseException:
    """``err``, its message extended with what was kept (an :class:`LLEError` stays one line with its hint)."""
    if not isinstance(err, LLEError):
        return err
    kept = [str(getattr(s, "path", None) or getattr(s, "folder", "")) for s in sinks if getattr(s, "written", 0)]
    kept = [k for k in kept if k]
    note = f"; the {written} frame(s) before it were written to {', '.join(kept)}" if kept else ""
    new = type(err)(f"{err}{note}", hint=err.hint)
    new.__cause__ = err.__cause__
    return new


def _stats(times: list[float]) -> StageStats:
    a = np.asarray(times) * 1000.0
    return StageStats(float(a.mean()), float(np.percentile(a, 50)), float(np.percentile(a, 90)), len(a))
