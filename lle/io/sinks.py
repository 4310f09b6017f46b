"""Frame sinks for ``lle run``: an image file, a folder of images, a video file, a window.

Sinks take (H, W, 3) BGR uint8 images. Files are written atomically: images through a temporary file and a rename,
videos into a hidden temporary file in the destination folder that is renamed when :meth:`Sink.close` finalises it
(so an interrupted run still leaves a playable video, and a crash never leaves a half-written one under the name).
"""

from __future__ import annotations

import abc
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from lle._atomic import atomic_write_bytes
from lle.errors import InputError
from lle.io.frames import Frame
from lle.io.image import IMAGE_SUFFIXES

__all__ = ["FOURCC", "FolderSink", "ImageFileSink", "Sink", "VideoFileSink", "WindowSink", "write_bytes_atomic"]

log = logging.getLogger(__name__)

# Codecs available in the opencv-python(-headless) wheels' FFmpeg, by container.
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Raises:
        InputError: the destination cannot be written.
    """
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", hint="choose a writable -o/--output") from err


def _encode(image: np.ndarray, suffix: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise InputError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


class Sink(abc.ABC):
    """Receives enhanced frames in order; :meth:`close` finalises the output."""

    takes_i420: bool = False
    """Whether :meth:`write` also takes (H*3/2, W) I420 images (else callers convert them to BGR first)."""

    @abc.abstractmethod
    def write(self, frame: Frame, image: np.ndarray) -> None:
        """Write (H, W, 3) BGR uint8 ``image`` for source ``frame`` (or I420, see :attr:`takes_i420`)."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Finalise the output. Safe to call twice."""

    def abort(self) -> None:
        """Stop after an error: finalise what was written so far (default: same as :meth:`close`)."""
        self.close()


class ImageFileSink(Sink):
    """A single image file (the format follows the suffix)."""

    def __init__(self, path: Path) -> None:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            supported = ", ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(f"cannot write {path.suffix!r} images", hint=f"use one of {supported}")
        self.path, self.written = path, 0

    def write(self, frame: Frame, image: np.ndarray) -> None:
        if self.written:
            raise InputError(f"output {self.path} is one image but the source has several frames", hint="pass a folder")
        write_bytes_atomic(self.path, _encode(image, self.path.suffix.lower()))
        self.written += 1


class FolderSink(Sink):
    """One image per frame in ``folder``, named after the source frame (images keep their names and format)."""

    def __init__(self, folder: Path, suffix: str | None = None) -> None:
        if folder.exists() and not folder.is_dir():
            raise InputError(f"output {folder} is a file but several images are written", hint="pass a folder as -o")
        self.folder, self.suffix, self.written = folder, suffix, 0

    def write(self, frame: Frame, image: np.ndarray) -> None:
        name = Path(frame.name)
        if self.suffix:
            name = name.with_suffix(self.suffix)
        write_bytes_atomic(self.folder / name, _encode(image, name.suffix.lower()))
        self.written += 1


class VideoFileSink(Sink):
    """A video file at ``fps`` with the frame size of the first frame; codec from the container (see ``FOURCC``).

    Audio is not carried over (OpenCV reads and writes video streams only).
    """

    def __init__(self, path: Path, fps: float) -> None:
        suffix = path.suffix.lower()
        if suffix not in FOURCC:
            raise InputError(f"cannot write {suffix or 'suffix-less'} video {path}", hint=f"use {', '.join(FOURCC)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot write to {path.parent}: {err.strerror}") from err
        self.path, self.fps, self.written = path, fps, 0
        self._tmp = path.with_name(f".{path.stem}.part{path.suffix}")
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: Frame, image: np.ndarray) -> None:
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, fourcc, self.fps, size)
            if not self._writer.isOpened():
                self._writer = None
                self._tmp.unlink(missing_ok=True)
                raise InputError(f"OpenCV cannot write {self.path.suffix} video to {self.path}", hint="try -o out.avi")
            self._size = size
        elif size != self._size:
            raise InputError(f"frame {frame.index} is {size[0]}x{size[1]}, the video is {self._size}")
        self._writer.write(image)
        self.written += 1

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        try:
            os.replace(self._tmp, self.path)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror}") from err
        log.info("wrote %s (%d frames at %.3g fps)", self.path, self.written, self.fps)


class WindowSink(Sink):
    """An OpenCV window (needs an OpenCV build with a GUI; the headless wheel has none). ``q``/Esc stops."""

    def __init__(self, title: str = "lle") -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as err:
            raise InputError(
                "--show needs an OpenCV build with a GUI; opencv-python-headless has none",
                hint="pip install opencv-python (replacing -headless), or write to a file with -o",
            ) from err
        self.closed_by_user = False

    def write(self, frame: Frame, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed_by_user = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
