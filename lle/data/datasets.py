"""Paired (low, reference) and single-image data sets: discovery, validation report, pre-loading, splitting."""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lle.errors import DataError, InputError
from lle.io.image import find_images, read_image

__all__ = [
    "PAIR_LAYOUTS",
    "Pair",
    "PairReport",
    "load_images",
    "load_pairs",
    "resolve_pair_dirs",
    "split_names",
]

log = logging.getLogger(__name__)

PAIR_LAYOUTS = (("low_light", "ground_truth"), ("low", "ref"), ("low", "high"), ("input", "expert"))
"""Sub-folder names recognised under a data root, seed layout first."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Pair:
    """A low-light image and its reference, (H, W, 3) float32 in [0, 1] of equal size."""

    name: str
    low: np.ndarray
    ref: np.ndarray


@dataclass(slots=True)
class PairReport:
    """Loaded pairs and every problem found on the way (nothing is dropped silently)."""

    pairs: list[Pair] = field(default_factory=list)
    only_low: list[str] = field(default_factory=list)
    only_ref: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    size_mismatch: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = [f"no reference for {n}" for n in self.only_low] + [f"no low image for {n}" for n in self.only_ref]
        return out + [f"unreadable: {n}" for n in self.unreadable] + [f"size mismatch: {n}" for n in self.size_mismatch]


def resolve_pair_dirs(root: Path) -> tuple[Path, Path]:
    """Find the (low, reference) folders under ``root`` using :data:`PAIR_LAYOUTS`.

    Raises:
        DataError: none of the layouts exists under ``root``.
    """
    for low, ref in PAIR_LAYOUTS:
        if (root / low).is_dir() and (root / ref).is_dir():
            return root / low, root / ref
    names = ", ".join(f"{a}/+{b}/" for a, b in PAIR_LAYOUTS)
    raise DataError(f"no paired layout under {root}", hint=f"expected one of: {names}")


def _shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def load_pairs(
    low_dir: Path,
    ref_dir: Path,
    *,
    names: Sequence[str] | None = None,
    max_side: int | None = None,
    progress: Progress | None = None,
) -> PairReport:
    """Match files by name in ``low_dir`` and ``ref_dir``, read them, and report every problem.

    Args:
        names: restrict to these file names (e.g. one split).
        max_side: downscale both images (area) so the long side is at most this.

    Raises:
        DataError: a folder is missing or empty.
    """
    for d in (low_dir, ref_dir):
        if not d.is_dir():
            raise DataError(f"data folder not found: {d}")
    lows = {p.name: p for p in find_images(low_dir)}
    refs = {p.name: p for p in find_images(ref_dir)}
    if not lows:
        raise DataError(f"no images in {low_dir}")
    report = PairReport(only_low=sorted(lows.keys() - refs.keys()), only_ref=sorted(refs.keys() - lows.keys()))
    common = sorted(lows.keys() & refs.keys())
    if names is not None:
        wanted = set(names)
        common = [n for n in common if n in wanted]
    for i, n in enumerate(common):
        try:
            low, _ = read_image(lows[n])
            ref, _ = read_image(refs[n])
        except InputError:
            report.unreadable.append(n)
            continue
        if low.shape != ref.shape:
            report.size_mismatch.append(f"{n} {low.shape[1]}x{low.shape[0]} vs {ref.shape[1]}x{ref.shape[0]}")
            continue
        report.pairs.append(Pair(n, _shrink(low, max_side), _shrink(ref, max_side)))
        if progress:
            progress(i + 1, len(common))
    for p in report.problems:
        log.warning("%s: %s", low_dir.parent, p)
    return report


def load_images(
    paths: Sequence[Path], *, max_side: int | None = None, progress: Progress | None = None
) -> list[np.ndarray]:
    """Read images as (H, W, 3) float32 in [0, 1]; unreadable files are logged and skipped."""
    out = []
    for i, p in enumerate(paths):
        try:
            out.append(_shrink(read_image(p)[0], max_side))
        except InputError as err:
            log.warning("skipping %s", err)
        if progress:
            progress(i + 1, len(paths))
    return out


def _group_of(root: Path, column: str | None) -> dict[str, str]:
    manifest = root / "manifest.csv"
    if column is None or not manifest.is_file():
        return {}
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and column not in rows[0]:
        raise DataError(f"{manifest} has no column {column!r}", hint=f"columns: {', '.join(rows[0])}")
    return {r["name"]: r[column] for r in rows if "name" in r}


def split_names(
    names: Sequence[str], val_fraction: float, *, root: Path | None = None, group_column: str | None = None
) -> tuple[list[str], list[str]]:
    """Deterministic train/val split by hashing the group of each name (the name itself when no group is known).

    Near-duplicate frames of one scene share a group (e.g. ``scene_group`` in the data's manifest.csv), so they never
    straddle the split.
    """
    groups = _group_of(root, group_column) if root is not None else {}
    train: list[str] = []
    val: list[str] = []
    for n in names:
        key = groups.get(n, n)
        h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(n)
    return train, val
