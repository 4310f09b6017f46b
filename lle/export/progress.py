"""Progress inside one export step, for an ETA instead of a bar that sits on one step for minutes.

The long steps (INT8 calibration, the mixed-precision search) say how far along they are.

:func:`lle.export.export_model` installs the reporter for each step; a step calls :func:`report`. Outside an export
(tests, library use) :func:`report` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Reporter", "report", "reporting"]

Reporter = Callable[[int, int, str], None]
"""``(done, total, what)``: ``done`` of ``total`` units of the work called ``what`` are finished."""

_current: ContextVar[Reporter | None] = ContextVar("lle_export_progress", default=None)


def report(done: int, total: int, what: str) -> None:
    """Tell the current export step's reporter (if any) that ``done`` of ``total`` units of ``what`` are done.

    Example:
        >>> seen = []
        >>> with reporting(lambda d, t, w: seen.append((d, t, w))):
        ...     report(1, 4, "calibration")
        >>> report(2, 4, "calibration")  # no reporter installed: nothing happens
        >>> seen
        [(1, 4, 'calibration')]
    """
    cb = _current.get()
    if cb is not None:
        cb(done, total, what)


@contextmanager
def reporting(cb: Reporter | None) -> Iterator[None]:
    """Install ``cb`` as the reporter for the code inside the ``with`` block."""
    token = _current.set(cb)
    try:
        yield
    finally:
        _current.reset(token)
