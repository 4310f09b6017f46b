"""Frame sources for ``lle run``: images, folders, globs, video files, cameras, RTSP/HTTP streams, GStreamer pipelines.

Every source yields :class:`Frame` objects holding (H, W, 3) BGR uint8 images (OpenCV's layout; the pipeline
converts once, in its pre-processing stage). File sources are finite and yield every frame in order; live sources
(``live = True``) are read as fast as they produce and the pipeline keeps only the newest frame.

A Jetson CSI camera through GStreamer (OpenCV must be built with GStreamer, as JetPack's is)::

    lle run realtime.plan --source "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,\
framerate=30/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
"""

from __future__ import annotations

import glob
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lle.errors import InputError
from lle.io.frames import Frame, Source
from lle.io.image import IMAGE_SUFFIXES, find_images, is_image

__all__ = [
    "CaptureSource", "Frame", "ImageSource", "Source", "VideoFileSource", "is_live_spec", "open_source",
]  # fmt: skip

log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")


def _read_bgr(path: Path) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"not a readable image: {path}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
    return img


class ImageSource(Source):
    """Image files, in the given order (8-bit; 16-bit files are reduced to 8 bits, use ``lle enhance`` to keep them)."""

    def __init__(self, paths: list[Path], description: str) -> None:
        self.paths, self.description, self.total = paths, description, len(paths)

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.paths):
            yield Frame(i, _read_bgr(p), p.name, time.perf_counter())


class _CaptureBase(Source):
    def _open(self, target: Any, api: int = cv2.CAP_ANY) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise InputError(self._open_error())
        return cap

    def _open_error(self) -> str:
        return f"cannot open {self.description}"

    def _props(self, cap: cv2.VideoCapture) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None


class VideoFileSource(_CaptureBase):
    """A video file decoded with OpenCV/FFmpeg; every frame, in order."""

    is_video = True

    def __init__(self, path: Path) -> None:
        self.path, self.description = path, f"video {path}"
        self._cap: cv2.VideoCapture | None = self._open(str(path), cv2.CAP_FFMPEG)
        self._props(self._cap)
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = n if n > 0 else None
        ok, first = self._cap.read()
        if not ok or first is None:
            self.close()
            raise InputError(f"not a readable video (no decodable frame): {path}", hint="check the file with ffprobe")
        self._first: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])

    def _open_error(self) -> str:
        return f"not a readable video: {self.path}"

    def __iter__(self) -> Iterator[Frame]:
        if self._cap is None or self._first is None:
            raise InputError(f"{self.description} was already read")
        first, self._first = self._first, None
        yield Frame(0, first, f"{self.path.stem}_{0:06d}.png", time.perf_counter())
        i = 1
        while True:
            ok, img = self._cap.read()
            if not ok or img is None:
                break
            yield Frame(i, img, f"{self.path.stem}_{i:06d}.png", time.perf_counter())
            i += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CaptureSource(_CaptureBase):
    """A live source: camera index, RTSP/HTTP URL or GStreamer pipeline.

    Network streams that stop delivering frames are reopened with exponential back-off (``retries`` attempts,
    ``backoff`` seconds doubling up to 8 s); other live sources end when the device stops.
    """

    live = True

    def __init__(
        self, target: int | str, *, api: int = cv2.CAP_ANY, retries: int = 5, backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self.target, self.api, self.retries, self.backoff, self._sleep = target, api, retries, backoff, sleep
        kind = "camera" if isinstance(target, int) else "GStreamer pipeline" if api == cv2.CAP_GSTREAMER else "stream"
        self.description = f"{kind} {target}"
        scheme = target.split("://")[0].lower() if isinstance(target, str) else ""
        self.reconnect = scheme in {"rtsp", "rtsps", "http", "https"}
        self._cap: cv2.VideoCapture | None = self._open(target, api)
        self._props(self._cap)
        self.reconnects = 0

    def _open_error(self) -> str:
        if isinstance(self.target, int):
            return f"cannot open camera {self.target} (no such device, or it is busy)"
        return f"cannot open {self.description}"

    def _reopen(self) -> bool:
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            log.warning("%s stopped; reconnecting in %.1f s (attempt %d/%d)", self.description, delay, attempt,
                        self.retries)
            self._sleep(delay)
            try:
                self._cap = self._open(self.target, self.api)
            except InputError:
                delay = min(delay * 2, 8.0)
                continue
            self.reconnects += 1
            return True
        return False

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        name = "camera" if isinstance(self.target, int) else "stream"
        while self._cap is not None:
            ok, img = self._cap.read()
            if ok and img is not None:
                yield Frame(i, img, f"{name}_{i:06d}.png", time.perf_counter())
                i += 1
                continue
            self._cap.release()
            self._cap = None
            if not (self.reconnect and self._reopen()):
                break

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def is_live_spec(spec: str) -> bool:
    """True for a camera index, URL or GStreamer pipeline (as opposed to files)."""
    return spec.strip().isdigit() or "://" in spec or "!" in spec


def open_source(spec: str, *, codec_threads: int = 0) -> Source:
    """Open a frame source.

    ``spec``: camera index ("0"), URL (rtsp://, http(s)://), GStreamer pipeline (contains "!"), glob ("dir/*.png"),
    folder, image file or video file. ``codec_threads``: decoder threads for video files (0 = FFmpeg's choice).

    Raises:
        InputError: missing file, empty folder/glob, unreadable video, camera or stream that cannot be opened.
    """
    s = spec.strip()
    if s.isdigit():
        return CaptureSource(int(s))
    if "://" in s:
        return CaptureSource(s, api=cv2.CAP_FFMPEG)
    if "!" in s:
        if not re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()):
            raise InputError(
                "this OpenCV build has no GStreamer support, so pipeline sources cannot be opened",
                hint="use the system OpenCV with GStreamer (JetPack ships one) instead of opencv-python-headless",
            )
        return CaptureSource(s, api=cv2.CAP_GSTREAMER)
    path = Path(s)
    if any(c in s for c in _GLOB_CHARS) and not path.exists():
        found = sorted(Path(p) for p in glob.glob(s) if is_image(Path(p)) and Path(p).is_file())
        if not found:
            raise InputError(f"no images match {s}")
        return ImageSource(found, f"{len(found)} images matching {s}")
    if path.is_dir():
        images = find_images(path)
        if not images:
            raise InputError(f"no images in folder {path}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
        return ImageSource(images, f"{len(images)} images in {path}")
    if not path.is_file():
        raise InputError(f"source not found: {s}", hint="give an image, folder, glob, video, camera index or URL")
    if is_image(path):
        return ImageSource([path], f"image {path}")
    from lle.io.av_video import AvVideoSource, have_av

    if have_av():
        return AvVideoSource(path, threads=codec_threads)
    log.info("PyAV is not installed: decoding %s with OpenCV (pip install 'lle[video]' for PyAV)", path)
    return VideoFileSource(path)
