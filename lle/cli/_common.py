"""Shared CLI plumbing: consoles, progress bars, default weights."""

from __future__ import annotations

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
from lle.presets import WEIGHTS_DIR, bundled_weights

__all__ = [
    "PRESETS",
    "STATE",
    "WEIGHTS_DIR",
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
PRESETS = ("quality", "realtime")


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


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`LLEError` into one red line on stderr (plus a hint line) and exit code 1.

    ``lle --debug`` re-raises instead, with the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LLEError as err:
            if STATE["debug"]:
                raise
            err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
            if err.hint:
                err_console.print(f"hint: {escape(err.hint)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
