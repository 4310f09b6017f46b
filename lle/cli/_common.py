"""Shared CLI plumbing: consoles, progress bars, default weights."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lle.errors import InputError, LLEError
from lle.presets import PRESETS, WEIGHTS_DIR, bundled_weights

__all__ = [
    "PRESETS",
    "STATE",
    "WEIGHTS_DIR",
    "check_preset",
    "cli_errors",
    "default_weights",
    "err_console",
    "out_console",
    "progress_bar",
]

P = ParamSpec("P")
R = TypeVar("R")

out_console = Console()
err_console = Console(stderr=True)


def check_preset(value: str | None) -> str | None:
    """Typer callback: ``value`` must name a preset (the one table, :data:`lle.presets.PRESETS`)."""
    if value is not None and value not in PRESETS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(repr, PRESETS))}.")
    return value


def default_weights(preset: str, weights: Path | None) -> Path:
    """``weights`` if given, else the bundled weights of ``preset``.

    Raises:
        InputError: nothing given and no bundled weights for the preset.
    """
    if weights is not None:
        if not weights.is_file():
            raise InputError(f"weights file not found: {weights}")
        return weights
    return bundled_weights(preset, hint="pass --weights PATH")


@contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr, drawn only on a terminal."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
        disable=not (enabled and sys.stderr.isatty()), transient=False,
    ) as bar:  # fmt: skip
        bar.add_task(description, total=total, info="")
        yield bar


STATE = {"debug": False}

_STORAGE_ERRORS = {
    errno.ENOSPC: "the disk is full: free some space or choose another output folder",
    errno.EDQUOT: "your disk quota is used up: free some space or choose another output folder",
    errno.EROFS: "that file system is read-only: choose another output folder",
    errno.EACCES: "you have no permission there: choose another path",
    errno.EFBIG: "the file is larger than this file system or your limits allow: choose another output folder",
    errno.ENOTDIR: "a file stands where a folder is expected: choose another output folder",
    errno.EISDIR: "a folder stands where a file is expected: choose another output path",
}


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`LLEError` into one red line on stderr (plus a hint line) and exit code 1.

    A storage ``OSError`` that reached the command unconverted (disk full, quota, read-only, permission) gets the
    same treatment, naming the file. ``lle --debug`` re-raises instead, with the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LLEError as err:
            if STATE["debug"]:
                raise
            _print_error(str(err), err.hint)
            raise typer.Exit(1) from None
        except OSError as err:
            if STATE["debug"] or err.errno not in _STORAGE_ERRORS:
                raise
            where = f" {err.filename}" if err.filename else ""
            _print_error(f"cannot write{where}: {err.strerror or err}", _STORAGE_ERRORS[err.errno])
            raise typer.Exit(1) from None

    return wrapper


def _print_error(message: str, hint: str | None) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"hint: {escape(hint)}", highlight=False, soft_wrap=True)
