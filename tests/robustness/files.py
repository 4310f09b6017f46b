"""Bad and unusual user files, made small and fast: every case of the bad-input matrix builds its file here."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FILES", "big_png", "dark_u8", "make_file", "tiny_video"]


def dark_u8(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A dark, textured uint8 image (H, W, C)."""
    r = np.random.default_rng(seed)
    return r.integers(5, 60, (h, w, channels), dtype=np.uint8) if channels > 1 else r.integers(5, 60, (h, w), np.uint8)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _pil(save: Callable[[io.BytesIO], None]) -> bytes:
    b = io.BytesIO()
    save(b)
    return b.getvalue()


def _palette() -> bytes:
    from PIL import Image

    return _pil(lambda b: Image.fromarray(dark_u8(12, 10)).convert("P", palette=Image.Palette.ADAPTIVE).save(b, "PNG"))


def _cmyk() -> bytes:
    from PIL import Image

    return _pil(lambda b: Image.fromarray(dark_u8(12, 10)).convert("CMYK").save(b, "JPEG"))


def _exif_rotated() -> bytes:
    from PIL import Image

    img = Image.fromarray(dark_u8(8, 16))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display: a 16x8 file shows as 8x16
    return _pil(lambda b: img.save(b, "JPEG", exif=exif))


def _animated(fmt: str) -> bytes:
    from PIL import Image

    frames = [Image.fromarray(dark_u8(10, 12, seed=i)) for i in range(3)]
    return _pil(lambda b: frames[0].save(b, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0))


def tiny_video(path: Path, n: int = 8, size: tuple[int, int] = (32, 24), fps: float = 8.0) -> Path:
    """An H.264 MP4 of ``n`` dark frames (PyAV)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=int(fps))
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.options = {"preset": "ultrafast", "g": "4"}
        for i in range(n):
            f = av.VideoFrame.from_ndarray(dark_u8(size[1], size[0], seed=i), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _truncated_video(path: Path) -> bytes:
    tiny_video(path)
    data = path.read_bytes()
    return data[: len(data) // 2]


def big_png(path: Path, w: int, h: int) -> Path:
    """A grey ``w`` x ``h`` 8-bit RGB PNG written row block by row block (never the whole image in memory)."""
    comp = zlib.compressobj(1)
    row = b"\x00" + bytes([20, 20, 20]) * w

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        block = row * 64
        for y in range(0, h, 64):
            data = comp.compress(block if y + 64 <= h else row * (h - y))
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", comp.flush()) + chunk(b"IEND", b""))
    return path


def _bytes(data: bytes) -> Callable[[Path], bytes]:
    return lambda _p: data


FILES: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    # name: (suffix, maker(path) -> bytes)
    "zero-byte png": (".png", _bytes(b"")),
    "zero-byte jpg": (".jpg", _bytes(b"")),
    "truncated png": (".png", lambda p: _png(dark_u8(32, 32))[:60]),
    "garbage png": (".png", _bytes(b"GIF89a not really" * 40)),
    "garbage jpg": (".jpg", _bytes(bytes(range(256)) * 8)),
    "1x1": (".png", lambda p: _png(dark_u8(1, 1))),
    "1xN": (".png", lambda p: _png(dark_u8(1, 37))),
    "Nx1": (".png", lambda p: _png(dark_u8(29, 1))),
    "16-bit": (".png", lambda p: _png(dark_u8(9, 11).astype(np.uint16) * 257)),
    "RGBA": (".png", lambda p: _png(np.dstack([dark_u8(9, 11), np.full((9, 11), 128, np.uint8)]))),
    "greyscale": (".png", lambda p: _png(dark_u8(9, 11, channels=1))),
    "palette": (".png", lambda p: _palette()),
    "CMYK": (".jpg", lambda p: _cmyk()),
    "EXIF-rotated": (".jpg", lambda p: _exif_rotated()),
    "animated GIF": (".gif", lambda p: _animated("GIF")),
    "animated WebP": (".webp", lambda p: _animated("WEBP")),
    "zero-byte mp4": (".mp4", _bytes(b"")),
    "truncated mp4": (".mp4", _truncated_video),
    "garbage mp4": (".mp4", _bytes(b"\x00garbage" * 500)),
    "zero-byte onnx": (".onnx", _bytes(b"")),
    "garbage onnx": (".onnx", _bytes(b"\x08\x07garbage protobuf" * 50)),
    "zero-byte safetensors": (".safetensors", _bytes(b"")),
    "garbage safetensors": (".safetensors", _bytes(b"\xff" * 64)),
}


def make_file(folder: Path, case: str, stem: str = "input") -> Path:
    """Write the file of ``case`` (a key of :data:`FILES`) as ``folder/stem<suffix>``."""
    suffix, maker = FILES[case]
    path = folder / f"{stem}{suffix}"
    data = maker(path)
    path.write_bytes(data)
    return path
