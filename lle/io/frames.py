"""What every frame source yields and what it is: :class:`Frame` and the :class:`Source` interface.

The one module the video readers and writers (:mod:`lle.io.sources`, :mod:`lle.io.av_video`,
:mod:`lle.io.sinks`) all import, so none of them imports another to get these.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "Source"]


@dataclass(slots=True)
class Frame:
    """One frame: ``index`` counts frames read from the source (gaps = dropped), ``name`` names image outputs."""

    index: int
    image: np.ndarray
    name: str
    t_capture: float = 0.0


class Source(abc.ABC):
    """An iterable of frames; a context manager that releases the device or file."""

    live: bool = False
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)
    total: int | None = None
    description: str = ""
    is_video: bool = False

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the device or file. Safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
