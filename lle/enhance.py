"""Enhance image files: plan input -> output paths safely, then run an :class:`Enhancer` over them."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lle.errors import InputError
from lle.io.image import IMAGE_SUFFIXES, find_images, from_nchw, is_image, read_layers, to_nchw, write_image
from lle.pipeline import Enhancer

if TYPE_CHECKING:
    from lle.backends.base import Backend

__all__ = ["AUTO_TILE", "EnhanceResult", "enhance_file", "enhance_files", "make_enhancer", "plan_outputs"]

AUTO_TILE = 2048
"""Images larger than this (px, either side) are enhanced in overlapping tiles of this size when ``tile`` is 0."""


@dataclass(frozen=True, slots=True)
class EnhanceResult:
    written: list[Path]
    seconds: float


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


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
    for src, dst in plan:
        key = dst.resolve()
        if key in seen:
            raise InputError(
                f"two inputs would both write {dst}: {seen[key]} and {src}", hint="enhance them separately"
            )
        seen[key] = src
        if any(_same(s, dst) for s in sources):
            raise InputError(f"refusing to overwrite input {dst}", hint="choose another -o/--output")
    return plan


def make_enhancer(backend: Backend, tile: int = 0) -> Enhancer:
    """The :class:`Enhancer` ``lle enhance`` runs over a loaded float-I/O ``backend``.

    ``tile`` is the tile size in px (0: tiles of :data:`AUTO_TILE` for larger images), rounded up to the backend's
    size multiple; tiles overlap by a quarter of their size, at most 64 px.

    Raises:
        InputError: ``tile`` between 1 and 31.
    """
    mult = backend.input_spec.size_multiple
    if tile and tile < 32:
        raise InputError(f"--tile {tile} is too small", hint="use 0 (automatic) or at least 32")
    size = -(-(tile or AUTO_TILE) // mult) * mult
    return Enhancer(backend.infer, mult, tile=size, overlap=min(64, size // 4))


def enhance_file(src: Path, dst: Path, enhancer: Enhancer) -> Path:
    """Read ``src``, enhance it and write ``dst`` atomically; returns ``dst``.

    16-bit PNG/TIFF inputs stay 16-bit (when ``dst`` keeps the suffix), greyscale stays greyscale and alpha is kept.

    Raises:
        InputError: ``src`` is not a readable image or ``dst`` cannot be written.
    """
    img, depth, alpha, grey = read_layers(src)
    out = from_nchw(enhancer(to_nchw(img)))
    write_image(dst, out, depth=depth if dst.suffix.lower() == src.suffix.lower() else 8, alpha=alpha, grey=grey)
    return dst


def enhance_files(
    plan: Sequence[tuple[Path, Path]], enhancer: Enhancer, progress: Callable[[int, int], None] | None = None
) -> list[Path]:
    """Read, enhance and atomically write each (src, dst) with :func:`enhance_file`.

    16-bit PNG/TIFF inputs stay 16-bit, greyscale stays greyscale and alpha is kept unchanged.
    """
    written = []
    for i, (src, dst) in enumerate(plan):
        written.append(enhance_file(src, dst, enhancer))
        if progress:
            progress(i + 1, len(plan))
    return written
