"""Writing a bench report: JSON, CSV, markdown and PNG plots, each file atomically (readers never see half a file)."""

from __future__ import annotations

import logging
from pathlib import Path

from lle._atomic import atomic_write_bytes
from lle.bench.plots import plot_fps, plot_latency, png_bytes
from lle.bench.report import BenchReport, render_markdown, to_csv, to_json
from lle.errors import InputError

__all__ = ["write_atomic", "write_plots", "write_reports"]

log = logging.getLogger(__name__)


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename (umask permissions).

    Raises:
        InputError: the folder cannot be created or written.
    """
    try:
        atomic_write_bytes(Path(path), data.encode() if isinstance(data, str) else data)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", hint="choose a writable --out") from err
    return Path(path)



def write_reports(report: BenchReport, out: Path, *, stem: str = "bench", plots: bool = True) -> list[Path]:
    """Write ``<stem>.json``, ``.csv``, ``.md`` and (when matplotlib is installed) PNG plots into ``out``."""
    written: list[Path] = []
    pngs: list[Path] = []
    if plots:
        pngs = write_plots(report, out, stem=stem)
    written.append(write_atomic(out / f"{stem}.json", to_json(report)))
    written.append(write_atomic(out / f"{stem}.csv", to_csv(report)))
    written.append(write_atomic(out / f"{stem}.md", render_markdown(report, plots=[p.name for p in pngs])))
    return written + pngs


def write_plots(report: BenchReport, out: Path, *, stem: str = "bench") -> list[Path]:
    """Write ``<stem>_latency.png`` and ``<stem>_fps.png`` into ``out``; [] (with a log line) without matplotlib."""
    try:
        import matplotlib  # noqa: F401  (Figure objects need no pyplot, so no GUI backend is ever chosen)
    except ImportError:
        log.warning("matplotlib is not installed; no plots (pip install 'lle[bench]')")
        return []
    out_paths = []
    for name, make in (("latency", plot_latency), ("fps", plot_fps)):
        fig = make(report)
        if fig is not None:
            out_paths.append(write_atomic(out / f"{stem}_{name}.png", png_bytes(fig)))
    return out_paths
