"""Enhance image files: plan input -> output paths safely, then run an :class:`Enhancer` over them."""

from __future__ import annotations

import logging
import os
import re
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from lle._atomic import atomic_write_bytes
from lle.errors import InputError, LLEError
from lle.io.image import IMAGE_SUFFIXES, decode_planes, find_images, is_image, probe_image, write_error
from lle.pipeline import Enhancer

if TYPE_CHECKING:
    from lle.backends.base import Backend

__all__ = [
    "AUTO_TILE", "EnhanceResult", "MemoryPlan", "default_memory_budget", "enhance_file", "enhance_files",
    "make_enhancer", "parse_memory", "plan_memory", "plan_outputs",
]  # fmt: skip

log = logging.getLogger(__name__)

AUTO_TILE = 2048
"""Images larger than this (px, either side) are enhanced in overlapping tiles of this size when ``tile`` is 0."""

MIN_TILE = 128
"""The smallest tile a memory budget may shrink tiles to; an image that does not fit with it is refused."""

MODEL_BYTES_PER_PX_PER_WIDTH = 40
"""Peak torch CPU memory of one float32 forward pass per input pixel, per unit of the U-Net's ``width`` (measured:
about 560 bytes per pixel for the quality preset, width 16, at 512 and 1024 px tiles; rounded up)."""

DEFAULT_BUDGET_FRACTION = 0.5
DEFAULT_BUDGET_CAP = 1 << 30
"""``--max-memory`` default: half the memory the process can still take (MemAvailable, or the room left under its
address-space/data limit if lower), at most 1 GiB. The budget is what enhancing one image adds to the process, so
``lle enhance`` (0.3-0.5 GB with torch and the model) peaks under 1.6 GB, which an edge board with 4 GB has free;
larger images than that fits ask for ``--max-memory``."""

GB = 1 << 30


@dataclass(frozen=True, slots=True)
class EnhanceResult:
    written: list[Path]
    seconds: float
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """How one image is enhanced within a budget: tile side (px) and the memory it adds at its peak (bytes)."""

    tile: int
    peak: int


def parse_memory(text: str) -> int:
    """``"1.5G"``, ``"800M"``, ``"2GB"``, ``"512MiB"`` or plain bytes -> bytes.

    Raises:
        InputError: not a positive size.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise InputError(f"--max-memory {text!r} is not a size", hint="e.g. --max-memory 1.5G or --max-memory 800M")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 4 * GB


def _rss() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _mapped() -> tuple[int, int]:
    """(address space, data segment) this process has mapped, in bytes: what ``RLIMIT_AS``/``RLIMIT_DATA`` count.

    Falls back to the resident size where ``/proc/self/status`` is missing.
    """
    sizes: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmData"):
                sizes[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = _rss() if len(sizes) < 2 else 0
    return sizes.get("VmSize", rss), sizes.get("VmData", rss)


def default_memory_budget() -> int:
    """Memory ``lle enhance`` lets one image add by default: half of what the process can still take, at most 1 GiB.

    What it can take is the free RAM (MemAvailable), or, when lower, the room left under the process's
    address-space/data limit (the limit less what is mapped already). What the process holds already does not count
    against the budget: a server holding gigabytes still enhances a small photo.
    """
    room = _available_memory()
    for lim, used in zip((resource.RLIMIT_AS, resource.RLIMIT_DATA), _mapped(), strict=True):
        soft = resource.getrlimit(lim)[0]
        if soft != resource.RLIM_INFINITY:
            room = min(room, max(0, soft - used))
    return min(int(room * DEFAULT_BUDGET_FRACTION), DEFAULT_BUDGET_CAP)


def plan_memory(
    h: int, w: int, *, budget: int, tile: int, size_multiple: int, model_bytes_per_px: int, in_bytes: int = 1,
    out_planes: int = 3, out_bytes: int = 1, alpha: bool = False, file_bytes: int = 0, base: int = 0,
) -> MemoryPlan:  # fmt: skip
    """The largest tile (<= ``tile``, a multiple of ``size_multiple``, >= :data:`MIN_TILE`) whose peak fits ``budget``.

    The peak is the memory enhancing the image adds: the largest of three phases, decoding (the file's bytes and the
    decoded planes, twice when there is alpha), enhancing (decoded input, output planes, one band of float32 rows and
    one tile through the model) and encoding (output planes and their encoding); plus ``base``, anything else the
    caller counts against the same budget (default nothing: what the process holds already is not counted).

    Raises:
        InputError: even the smallest tile does not fit; the message names the size and the budget it needs.
    """
    px = h * w
    decoded = px * (3 + alpha) * in_bytes
    output = px * out_planes * out_bytes

    def peak(t: int) -> int:
        th, tw = min(t, h), min(t, w)
        work = 3 * th * w * 3 * 4 + th * tw * (model_bytes_per_px + 4 * 3 * 4)
        return base + max(file_bytes + decoded * (2 if alpha else 1), decoded + output + work, 2 * output)

    t = max(size_multiple, tile // size_multiple * size_multiple)
    floor = min(t, max(size_multiple, -(-MIN_TILE // size_multiple) * size_multiple))
    step = max(size_multiple, 32 // size_multiple * size_multiple)
    while t > floor and peak(t) > budget:
        t = max(floor, t - step)
    need = peak(t)
    if need > budget:
        raise InputError(
            f"a {w}x{h} image ({px / 1e6:.0f} MP) needs about {need / GB:.1f} GB to enhance, more than the "
            f"memory budget of {budget / GB:.1f} GB",
            hint=f"raise --max-memory (e.g. --max-memory {need / GB + 0.1:.1f}G) on a machine with that much free, "
            "or downscale the image",
        )
    return MemoryPlan(t, need)


def _inode(p: Path) -> tuple[int, int]:
    """(device, inode) of ``p``: the same file under another name (a hard link) has the same one."""
    try:
        st = p.stat()
    except OSError:
        return (-1, id(p))
    return (st.st_dev, st.st_ino)


def plan_outputs(inputs: Sequence[Path], output: Path) -> list[tuple[Path, Path]]:
    """Map every input image to its output path, checking everything before any work starts.

    A single image input with an image-suffixed ``output`` writes that file; otherwise ``output`` is a folder and
    each image keeps its file name (and format). Folders contribute the images directly inside them.

    Raises:
        InputError: missing input, non-image file, empty folder, duplicate output names, or an output that would
            overwrite an input.
    """
    if not inputs:
        raise InputError("no input given", hint="lle enhance PHOTO_OR_FOLDER... -o OUTPUT")
    sources: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = find_images(p)
            if not found:
                raise InputError(f"no images in folder {p}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
            sources += found
        elif p.is_file():
            if not is_image(p):
                raise InputError(f"not an image file: {p}", hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
            sources.append(p)
        else:
            raise InputError(f"input not found: {p}")
    single_file = len(inputs) == 1 and not inputs[0].is_dir() and output.suffix.lower() in IMAGE_SUFFIXES
    if single_file:
        plan = [(sources[0], output)]
    else:
        if output.exists() and not output.is_dir():
            raise InputError(f"output {output} is a file but several images are written", hint="pass a folder as -o")
        plan = [(s, output / s.name) for s in sources]
    seen: dict[Path, Path] = {}
    resolved = {s.resolve() for s in sources}  # sets, so a folder of thousands of photos stays linear
    inodes = {_inode(s) for s in sources}
    for src, dst in plan:
        key = dst.resolve()
        if key in seen:
            raise InputError(
                f"two inputs would both write {dst}: {seen[key]} and {src}", hint="enhance them separately"
            )
        seen[key] = src
        if key in resolved or (dst.exists() and _inode(dst) in inodes):
            raise InputError(f"refusing to overwrite input {dst}", hint="choose another -o/--output")
    return plan


def make_enhancer(backend: Backend, tile: int = 0) -> Enhancer:
    """The :class:`Enhancer` ``lle enhance`` runs over a loaded float-I/O ``backend``.

    ``tile`` is the tile size in px (0: tiles of :data:`AUTO_TILE` for larger images), rounded up to the backend's
    size multiple; tiles overlap by a quarter of their size, at most 64 px. The Enhancer's ``bytes_per_px`` is the
    model's estimated memory per input pixel (from the weights' card), used by :func:`plan_memory`; a quality card's
    ``exposure_cap`` makes tiles keep the whole image's exposure.

    Raises:
        InputError: ``tile`` between 1 and 31.
    """
    mult = backend.input_spec.size_multiple
    if tile and tile < 32:
        raise InputError(f"--tile {tile} is too small", hint="use 0 (automatic) or at least 32")
    size = -(-(tile or AUTO_TILE) // mult) * mult
    enhancer = Enhancer(backend.infer, mult, tile=size, overlap=min(64, size // 4),
                        exposure_cap=backend.input_spec.exposure_cap)
    card = getattr(backend, "card", None)
    width = int(getattr(card, "arch", {}).get("width", 32)) if card is not None else 32
    enhancer.bytes_per_px = MODEL_BYTES_PER_PX_PER_WIDTH * width
    return enhancer


_ALPHA_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".webp"})
_SIXTEEN_BIT = frozenset({".png", ".tif", ".tiff"})


def enhance_file(src: Path, dst: Path, enhancer: Enhancer, *, max_memory: int | None = None) -> Path:
    """Read ``src``, enhance it band by band and write ``dst`` atomically; returns ``dst``.

    16-bit PNG/TIFF inputs stay 16-bit (when ``dst`` keeps the suffix), greyscale stays greyscale and alpha is kept.
    Memory: the decoded image and the output are held as stored (8/16-bit); float32 exists for one band of tiles at
    a time, tiles shrinking so that what this image adds to the process stays under ``max_memory`` bytes (default:
    :func:`default_memory_budget`; what the process holds already is not counted). The result equals the
    whole-image :class:`Enhancer` with those tiles.

    Raises:
        InputError: ``src`` is not a readable image, does not fit the memory budget, or ``dst`` cannot be written.
    """
    import cv2

    src, dst = Path(src), Path(dst)
    budget = default_memory_budget() if max_memory is None else max_memory
    suffix = dst.suffix.lower()
    bpp = enhancer.bytes_per_px or MODEL_BYTES_PER_PX_PER_WIDTH * 32
    tile = enhancer.tile or AUTO_TILE

    def plan(h: int, w: int, in_bytes: int, planes: int, out_bytes: int, alpha: bool) -> MemoryPlan:
        try:
            return plan_memory(h, w, budget=budget, tile=tile, size_multiple=enhancer.size_multiple,
                               model_bytes_per_px=bpp, in_bytes=in_bytes, out_planes=planes, out_bytes=out_bytes,
                               alpha=alpha, file_bytes=src.stat().st_size)  # fmt: skip
        except InputError as err:
            raise InputError(f"{src}: {err}", hint=err.hint) from None

    header = probe_image(src)
    if header is not None:  # refuse before decoding what cannot fit
        plan(header.height, header.width, header.depth // 8, 3, 1, False)
    layers = decode_planes(src)
    h, w = layers[0].shape[:2]
    out_depth = layers[1] if suffix == src.suffix.lower() and suffix in _SIXTEEN_BIT else 8
    keep_alpha = layers[2] is not None and suffix in _ALPHA_SUFFIXES
    planes = 4 if keep_alpha else 1 if layers[3] else 3
    out_dtype = np.dtype(np.uint16 if out_depth == 16 else np.uint8)
    mp = plan(h, w, layers[0].itemsize, planes, out_dtype.itemsize, layers[2] is not None)
    log.debug("%s: %dx%d in tiles of %d px, expected to add %.2f GB at its peak", src, w, h, mp.tile, mp.peak / GB)
    out = _enhance_layers(layers, enhancer, mp.tile, out_dtype, keep_alpha)
    del layers  # the decoded input goes before the encoded output is made
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(suffix, out[..., 0] if planes == 1 else out, params)
    del out
    if not ok:
        raise InputError(f"OpenCV could not encode a {suffix} image for {dst}")
    try:
        atomic_write_bytes(dst, cast(bytes, buf.data))  # write() takes any buffer: no copy
    except OSError as err:
        e = write_error(dst, err)
        raise _WriteError(str(e), hint=e.hint) from err
    return dst


def _enhance_layers(
    layers: tuple[np.ndarray, int, np.ndarray | None, bool], enhancer: Enhancer, tile: int, out_dtype: np.dtype,
    keep_alpha: bool,
) -> np.ndarray:  # fmt: skip
    """(H, W, planes) ``out_dtype`` output planes (BGR, grey, + alpha) from :func:`decode_planes`'s ``layers``."""
    import cv2

    bgr, _, alpha, grey = layers
    h, w = bgr.shape[:2]
    planes = 4 if keep_alpha else 1 if grey else 3
    in_scale = 65535.0 if bgr.dtype == np.uint16 else 255.0
    out_scale = 65535.0 if out_dtype == np.uint16 else 255.0
    out = np.empty((h, w, planes), out_dtype)
    alpha_plane = alpha if alpha is not None else np.empty((0, 0), out_dtype)

    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        win = bgr[y0:y1, x0:x1, ::-1].transpose(2, 0, 1)[None]
        return np.multiply(win, np.float32(1.0 / in_scale), dtype=np.float32)

    def emit(y0: int, y1: int, rows: np.ndarray) -> None:
        rgb = rows[0].transpose(1, 2, 0)
        if grey:
            band = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)[..., None]
        else:
            band = rgb[..., ::-1]
        q = (band * out_scale + 0.5).astype(out_dtype)
        if not keep_alpha:
            out[y0:y1] = q
            return
        out[y0:y1, :, :3] = q
        a = alpha_plane[y0:y1]
        out[y0:y1, :, 3] = a if a.dtype == out_dtype else a.astype(np.float32) * (out_scale / in_scale) + 0.5

    enhancer.stream(h, w, read, emit, tile=tile)
    return out


class _WriteError(InputError):
    """An output could not be written (the next one would fail the same way)."""


def enhance_files(
    plan: Sequence[tuple[Path, Path]], enhancer: Enhancer, progress: Callable[[int, int], None] | None = None,
    *, max_memory: int | None = None, failed: list[tuple[Path, str]] | None = None,
) -> list[Path]:  # fmt: skip
    """Read, enhance and atomically write each (src, dst) with :func:`enhance_file`.

    16-bit PNG/TIFF inputs stay 16-bit, greyscale stays greyscale and alpha is kept unchanged. With ``failed``
    (a list), an input that cannot be read or does not fit the memory budget is appended to it as (src, message) and
    the others are still done; a write error (disk full, read-only folder) always stops, since every later write
    would fail the same way.

    Raises:
        InputError: a write error, or any error of an input when ``failed`` is None.
    """
    written = []
    for i, (src, dst) in enumerate(plan):
        try:
            written.append(enhance_file(src, dst, enhancer, max_memory=max_memory))
        except LLEError as err:
            if failed is None or isinstance(err, _WriteError):
                raise
            failed.append((src, str(err)))
            log.warning("skipped %s: %s", src, err)
        if progress:
            progress(i + 1, len(plan))
    return written
