"""Video files through PyAV (FFmpeg): threaded decode to BGR frames, H.264 encode, audio copied, rate kept.

PyAV is the ``video`` extra (``pip install 'lle[video]'``); without it ``lle run`` falls back to OpenCV, which
writes MPEG-4 Part 2 video only and drops audio. Cameras and GStreamer pipelines always go through OpenCV.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from lle._lazy import require
from lle.errors import InputError
from lle.io.frames import Frame, Source, i420_size, is_i420
from lle.io.image import write_error
from lle.io.sinks import Sink

__all__ = ["AV_SUFFIXES", "AvVideoSink", "AvVideoSource", "have_av"]

log = logging.getLogger(__name__)

AV_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
"""Containers :class:`AvVideoSink` writes (H.264 video, source audio copied)."""


def _disk_limit_reached(path: Path, slack: int = 1 << 16) -> int | None:
    """The cause a muxer's own error code may hide, or None.

    ``EFBIG`` when ``path`` has grown to within ``slack`` bytes of the process's file-size limit, ``ENOSPC`` when its
    file system has less than 16 x ``slack`` bytes free.
    """
    try:
        size = path.stat().st_size
        free = (st := os.statvfs(path.parent)).f_bavail * st.f_frsize
    except OSError:
        return None
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and size + slack >= limit:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):  # no resource module (Windows)
        pass
    return errno.ENOSPC if free < 16 * slack else None


def have_av() -> bool:
    """True when PyAV can be imported."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def _rotation(stream: Any) -> int:
    """Clockwise display rotation of a video stream in degrees (0 when none is recorded)."""
    try:
        rot = stream.metadata.get("rotate")
        if rot is not None:
            return int(float(rot)) % 360
    except (AttributeError, ValueError):
        pass
    for sd in getattr(stream, "side_data", {}) or {}:
        if "DISPLAYMATRIX" in str(sd).upper():
            try:
                return int(round(-float(stream.side_data[sd]))) % 360
            except (TypeError, ValueError):
                return 0
    return 0


class AvVideoSource(Source):
    """Every frame of a video file, in order; undecodable packets are skipped and counted.

    Frames are (H, W, 3) BGR uint8, or (H*3/2, W) I420 after :meth:`want_i420` (no colour conversion).

    Attributes beyond :class:`Source`: ``rate`` (exact frame rate as a fraction), ``rotation`` (degrees, kept on the
    output), ``skipped`` (corrupt packets skipped so far), ``missing`` (frames lost without a decode error, seen as
    whole-frame jumps of the timestamps), ``path``.
    """

    is_video = True

    def __init__(self, path: Path, *, threads: int = 0) -> None:
        av = require("av", extra="video")
        self.path, self.description = Path(path), f"video {path}"
        try:
            self._c = av.open(str(path))
        except (av.error.FFmpegError, OSError) as err:  # type: ignore[attr-defined]
            raise InputError(f"not a readable video: {path} ({err})", hint="check the file with ffprobe") from err
        if not self._c.streams.video:
            self._c.close()
            raise InputError(f"not a readable video (no video stream): {path}", hint="check the file with ffprobe")
        self._v = self._c.streams.video[0]
        self._v.thread_type = "AUTO"
        if threads:
            self._v.codec_context.thread_count = threads
        rate = self._v.average_rate or self._v.guessed_rate
        self.rate: Fraction | None = Fraction(rate) if rate else None
        self.fps = float(self.rate) if self.rate else None
        self.total = int(self._v.frames) or None
        self.rotation = _rotation(self._v)
        self.has_audio = bool(self._c.streams.audio)
        self.skipped = 0
        self.missing = 0
        self._last_t: float | None = None
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            self.close()
            raise InputError(f"not a readable video (no decodable frame): {path}", hint="check the file with ffprobe")
        self._first: Any = first
        self.size = (first.width, first.height)
        self._format = "bgr24"

    def want_i420(self) -> bool:
        """Deliver (H*3/2, W) I420 arrays (``yuv420p``, no conversion to BGR) when that is what the decoder gives.

        Only for 8-bit limited-range 4:2:0 video of even size (nearly every H.264/HEVC file): full-range
        (``yuvj420p``, camera MJPEG), 10-bit or 4:2:2/4:4:4 streams stay BGR, which FFmpeg converts correctly.
        """
        first = self._first
        ok = (first is not None and first.format.name == "yuv420p" and getattr(first, "color_range", 0) != 2
              and first.width % 2 == 0 and first.height % 2 == 0)
        if ok:
            self._format = "yuv420p"
        return self._format == "yuv420p"

    def _decode(self) -> Iterator[Any]:
        import av

        packets = self._c.demux(self._v)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as err:  # type: ignore[attr-defined]
                log.warning("%s: the container is damaged after this point (%s); stopping there", self.path, err)
                return
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:  # type: ignore[attr-defined]
                self.skipped += 1
                continue
            for f in frames:
                self._count_gap(f.time)
                yield f

    def _count_gap(self, t: float | None) -> None:
        """Count frames a damaged stream lost without a decode error: timestamps that jump by whole frames."""
        if t is None or not self.fps:
            return
        if self._last_t is not None:
            steps = round((t - self._last_t) * self.fps)
            if steps > 1:
                self.missing += steps - 1
        self._last_t = t

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise InputError(f"{self.description} was already read")
        first, self._first = self._first, None
        fmt, size = self._format, self.size
        for i, vf in enumerate(itertools.chain([first], self._frames)):
            if fmt == "yuv420p" and (vf.width, vf.height) != size:
                fmt = self._format = "bgr24"  # a mid-stream size change: back to BGR, which every stage takes
            yield Frame(i, vf.to_ndarray(format=fmt), f"{self.path.stem}_{i:06d}.png", time.perf_counter())
        if self.skipped or self.missing:
            log.warning("%s: skipped %d corrupt packet(s), %d frame(s) missing (gaps in the timestamps); the other "
                        "frames were kept", self.path, self.skipped, self.missing)

    def close(self) -> None:
        c, self._c = getattr(self, "_c", None), None
        if c is not None:
            c.close()


class AvVideoSink(Sink):
    """H.264 video at the source's exact frame rate, into a hidden temporary file renamed on :meth:`close`.

    ``audio_from``: a file whose audio streams are copied (no re-encode) into the output. ``preset``/``crf``: x264
    speed/quality (``ultrafast``/20 by default: live video needs the CPU for the model). Odd frame sizes are encoded
    4:4:4 (4:2:0 needs even sizes).
    """

    takes_i420 = True

    def __init__(
        self, path: Path, rate: float | Fraction, *, audio_from: Path | None = None, rotation: int = 0,
        preset: str = "ultrafast", crf: int = 20, threads: int = 0,
    ) -> None:  # fmt: skip
        require("av", extra="video")
        if path.suffix.lower() not in AV_SUFFIXES:
            raise InputError(f"cannot write {path.suffix or 'suffix-less'} video {path} with PyAV",
                             hint=f"use {', '.join(AV_SUFFIXES)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot write to {path.parent}: {err.strerror}") from err
        self.path, self.written = path, 0
        self.rate = Fraction(rate).limit_denominator(1001 * 1000) if rate else Fraction(30)
        self.audio_from, self.rotation = audio_from, rotation
        self.preset, self.crf, self.threads = preset, crf, threads
        self._tmp = path.with_name(f".{path.stem}.part{path.suffix}")
        self._out: Any = None
        self._stream: Any = None
        self._audio_src: Any = None
        self._audio: dict[int, Any] = {}
        self._size: tuple[int, int] | None = None

    def _open(self, w: int, h: int) -> None:
        import av

        try:
            self._out = av.open(str(self._tmp), "w")
        except (av.error.FFmpegError, OSError) as err:  # type: ignore[attr-defined]
            raise self._write_error(err) from err
        s = self._out.add_stream("libx264", rate=self.rate)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        s.options = {"preset": self.preset, "crf": str(self.crf)}
        if self.threads:
            s.codec_context.thread_count = self.threads
        s.thread_type = "AUTO"
        if self.rotation:
            s.metadata["rotate"] = str(self.rotation)
        self._stream, self._size = s, (w, h)
        # Audio streams must exist before the first packet is muxed (the header is written then).
        if self.audio_from is not None:
            src = av.open(str(self.audio_from))
            if src.streams.audio:
                self._audio_src = src
                self._audio = {a.index: self._out.add_stream_from_template(a) for a in src.streams.audio}
            else:
                src.close()

    def write(self, frame: Frame, image: np.ndarray) -> None:
        """Encode (H, W, 3) BGR uint8 ``image``, or an (H*3/2, W) I420 one as it is (4:2:0 output)."""
        import av

        i420 = is_i420(image)
        w, h = i420_size(image) if i420 else (image.shape[1], image.shape[0])
        if self._out is None:
            self._open(w, h)
        elif (w, h) != self._size:
            raise InputError(f"frame {frame.index} is {w}x{h}, the video is {self._size}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="yuv420p" if i420 else "bgr24")
        vf.pts = self.written
        vf.time_base = 1 / self.rate
        try:
            for packet in self._stream.encode(vf):
                self._out.mux(packet)
        except (av.error.FFmpegError, OSError) as err:  # type: ignore[attr-defined]
            raise self._write_error(err) from err
        self.written += 1

    def _write_error(self, err: BaseException) -> InputError:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            return write_error(self.path, err)
        cause = _disk_limit_reached(self._tmp)  # muxers that seek (MP4) can turn a full disk into EINVAL/EIO
        if cause is not None:
            return write_error(self.path, OSError(cause, os.strerror(cause)))
        if isinstance(err, OSError) and err.errno:
            return write_error(self.path, err)
        return InputError(f"cannot write {self.path}: {err}", hint="choose a writable -o/--output")

    def abort(self) -> None:
        """After an error (a full disk): finalise if possible, else keep the file if it plays, else remove it.

        Matroska (.mkv) plays without its index, so it keeps the frames written before the disk filled; an MP4
        whose index could not be written does not play and is removed.
        """
        try:
            self.close()
            return
        except InputError as err:
            log.warning("%s", err)
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except Exception as err:  # noqa: BLE001  (the container may not be closable on a full disk)
                log.debug("closing %s: %s", self._tmp, err)
        if self._tmp.is_file() and self._tmp.stat().st_size > 0 and self._playable(self._tmp):
            os.replace(self._tmp, self.path)
            log.warning("kept the playable part of %s", self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    @staticmethod
    def _playable(path: Path) -> bool:
        import av

        try:
            with av.open(str(path)) as c:
                for _ in c.decode(video=0):
                    return True
        except (av.error.FFmpegError, OSError):  # type: ignore[attr-defined]
            return False
        return False

    def _copy_audio(self, out: Any) -> int:
        src, self._audio_src = self._audio_src, None
        if src is None:
            return 0
        copied = 0
        try:
            for packet in src.demux(*src.streams.audio):
                if packet.dts is None:
                    continue
                packet.stream = self._audio[packet.stream.index]
                out.mux(packet)
                copied += 1
        finally:
            src.close()
        return copied

    def close(self) -> None:
        """Flush the encoder, copy the audio, finalise and rename. Safe to call twice."""
        if self._out is None:
            return
        import av

        out = self._out
        try:
            for packet in self._stream.encode(None):
                out.mux(packet)
            audio = self._copy_audio(out)
            out.close()
        except (av.error.FFmpegError, OSError) as err:  # type: ignore[attr-defined]
            raise self._write_error(err) from err
        self._out = None
        try:
            os.replace(self._tmp, self.path)
        except OSError as err:
            raise InputError(f"cannot write {self.path}: {err.strerror}") from err
        log.info("wrote %s (%d frames at %s fps, H.264%s)", self.path, self.written, self.rate,
                 f", {audio} audio packets copied" if audio else "")
