"""Batch jobs over photo and video libraries: plan inputs -> outputs, skip finished outputs, report failures.

Nothing here imports Ray: :mod:`lle.scale.ray_batch` runs the planned jobs. Output names follow ``lle enhance``
(:func:`lle.enhance.plan_outputs`): each file keeps its name and format in the output folder, and one input with an
image (or video) suffixed ``-o`` writes that file.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lle._atomic import atomic_write_bytes
from lle.enhance import plan_outputs
from lle.errors import InputError
from lle.io.image import IMAGE_SUFFIXES, find_images, is_image
from lle.io.sinks import FOURCC

__all__ = [
    "MANIFEST_SUFFIXES",
    "VIDEO_SUFFIXES",
    "BatchResult",
    "Failure",
    "Job",
    "find_videos",
    "is_video",
    "pending",
    "plan_jobs",
    "read_manifest",
    "remove_stale_parts",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(FOURCC)
"""Video containers a batch job reads and writes (the suffixes ``lle run`` writes)."""
MANIFEST_SUFFIXES = frozenset({".txt", ".csv"})
"""A ``.txt`` manifest lists one path per line; a ``.csv`` manifest has a ``path`` column."""

Kind = Literal["image", "video"]

_SUPPORTED = (
    f"images ({', '.join(sorted(IMAGE_SUFFIXES))}), videos ({', '.join(sorted(VIDEO_SUFFIXES))}) "
    f"or manifests ({', '.join(sorted(MANIFEST_SUFFIXES))})"
)
# Temporary names of lle's atomic writers: ".name.<8 hex>.part.ext" (lle._atomic) and ".name.part.ext" (video sinks),
# nested when a video sink writes into an atomic temp path.
_PART = re.compile(r"^\.+(?P<stem>.+?)(?:\.[0-9a-f]{8})?(?:\.part)+(?P<suffix>\.[^.]+)$")


@dataclass(frozen=True, slots=True)
class Job:
    """One file to enhance: an image, or a whole video (never split, so temporal state runs through it)."""

    src: Path
    dst: Path
    kind: Kind


@dataclass(frozen=True, slots=True)
class Failure:
    """An input that could not be enhanced and why (one line)."""

    src: Path
    error: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch job did: outputs written, finished outputs skipped (resume), failures, wall time, workers."""

    written: list[Path]
    skipped: list[Path]
    failed: list[Failure]
    seconds: float
    workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "written": len(self.written),
            "skipped": len(self.skipped),
            "failed": [{"src": str(f.src), "error": f.error} for f in self.failed],
            "seconds": round(self.seconds, 3),
            "workers": self.workers,
            **self.extra,
        }

    def write_report(self, path: Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` atomically.

        Raises:
            InputError: ``path`` cannot be written.
        """
        try:
            atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        except OSError as err:
            raise InputError(f"cannot write the report {path}: {err.strerror}",
                             hint="choose a writable --report") from err  # fmt: skip
        return path


def is_video(path: Path) -> bool:
    """True when ``path`` has a video suffix (case-insensitive)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def find_videos(folder: Path) -> list[Path]:
    """Video files directly in ``folder``, sorted by name (hidden files skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_video(p) and not p.name.startswith("."))


def _check_file(path: Path, where: str = "") -> Path:
    if not path.exists():
        raise InputError(f"{where}input not found: {path}")
    if path.is_dir() or not (is_image(path) or is_video(path)):
        raise InputError(f"{where}not an image or video file: {path}", hint=f"supported: {_SUPPORTED}")
    return path


def read_manifest(path: Path) -> list[Path]:
    """The files a manifest lists, in its order. Relative paths are relative to the manifest's folder.

    ``.txt``: one path per line; blank lines and lines starting with ``#`` are skipped. ``.csv``: a header row with
    a ``path`` column (other columns are ignored).

    Raises:
        InputError: unreadable or empty manifest, no ``path`` column, or an entry that is missing or not an image
            or video (the message names the manifest line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read manifest {path}: {err}", hint="a UTF-8 text file, one path per line") from err
    entries: list[tuple[int, str]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise InputError(f"manifest {path} has no 'path' column (columns: {reader.fieldnames or []})",
                             hint="the first row is a header naming a 'path' column")  # fmt: skip
        entries = [(i + 2, (row["path"] or "").strip()) for i, row in enumerate(reader)]
        entries = [(n, e) for n, e in entries if e]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if s and not s.startswith("#"):
                entries.append((n, s))
    if not entries:
        raise InputError(f"manifest {path} lists no files", hint="one image or video path per line")
    base = path.parent
    return [_check_file(base / Path(e).expanduser(), f"manifest {path} line {n}: ") for n, e in entries]


def plan_jobs(inputs: Sequence[Path], output: Path) -> list[Job]:
    """Map images, videos, folders of them and manifests to output paths, checking everything before any work.

    Images get the paths :func:`lle.enhance.plan_outputs` gives them; videos keep their name in the ``output``
    folder, or a single video input with a video-suffixed ``output`` writes that file. Videos come first (the
    longest tasks start first).

    Raises:
        InputError: missing input, unsupported file, folder with no images or videos, duplicate output names, an
            output that would overwrite an input, or a single-file ``output`` for several inputs.
    """
    if not inputs:
        raise InputError("no input given", hint="lle enhance PHOTOS_VIDEOS_OR_MANIFEST... -o OUTPUT --ray")
    image_inputs: list[Path] = []
    videos: list[Path] = []
    for p in inputs:
        if p.is_dir():
            images, vids = find_images(p), find_videos(p)
            if not images and not vids:
                raise InputError(f"no images or videos in folder {p}", hint=f"supported: {_SUPPORTED}")
            if images:
                image_inputs.append(p)
            videos += vids
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            for entry in read_manifest(p):
                (videos if is_video(entry) else image_inputs).append(entry)
        else:
            _check_file(p)
            (videos if is_video(p) else image_inputs).append(p)
    if videos and len(image_inputs) == 1 and image_inputs[0].is_file() and output.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"output {output} names one image but videos are written too", hint="pass a folder as -o")
    jobs: list[Job] = []
    if videos:
        single = len(videos) == 1 and not image_inputs and not any(p.is_dir() for p in inputs) and is_video(output)
        if single:
            jobs.append(Job(videos[0], output, "video"))
        else:
            if output.exists() and not output.is_dir():
                raise InputError(f"output {output} is a file but several files are written", hint="pass a folder as -o")
            jobs += [Job(v, output / v.name, "video") for v in videos]
        seen: dict[Path, Path] = {}
        for job in jobs:
            key = job.dst.resolve()
            if key in seen:
                raise InputError(f"two inputs would both write {job.dst}: {seen[key]} and {job.src}",
                                 hint="enhance them separately")  # fmt: skip
            seen[key] = job.src
            if any(key == v.resolve() for v in videos):
                raise InputError(f"refusing to overwrite input {job.dst}", hint="choose another -o/--output")
    if image_inputs:
        jobs += [Job(src, dst, "image") for src, dst in plan_outputs(image_inputs, output)]
    return jobs


def remove_stale_parts(jobs: Iterable[Job]) -> list[Path]:
    """Delete temporary files a killed run left beside the jobs' outputs; returns what was removed.

    Only hidden files named like lle's own temporary files for one of these outputs are touched.
    """
    by_dir: dict[Path, set[str]] = {}
    for job in jobs:
        by_dir.setdefault(job.dst.parent, set()).add(job.dst.name)
    removed = []
    for folder, names in by_dir.items():
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            m = _PART.match(p.name) if p.name.startswith(".") else None
            if m and f"{m['stem']}{m['suffix']}" in names and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", len(removed))
    return removed


def pending(jobs: Sequence[Job]) -> tuple[list[Job], list[Job]]:
    """Split ``jobs`` into ``(to do, already finished)`` and clear temporary files left by an interrupted run.

    Outputs are only ever renamed into place when complete, so an existing output is a finished one.
    """
    remove_stale_parts(jobs)
    todo: list[Job] = []
    done: list[Job] = []
    for job in jobs:
        (done if job.dst.is_file() else todo).append(job)
    return todo, done
