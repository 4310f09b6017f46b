"""PNG plots of a bench report with matplotlib's Agg backend: latency vs resolution, FPS bars per size."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lle.bench.report import BenchReport, BenchRow

__all__ = ["plot_fps", "plot_latency", "png_bytes"]


def _pixels(size: str) -> float:
    w, _, h = size.partition("x")
    return int(w) * int(h) / 1e6 if w.isdigit() and h.isdigit() else float("nan")


def _measured(report: BenchReport) -> list[BenchRow]:
    return [r for r in report.rows if r.status != "error" and r.p50_ms is not None and r.kind != "video"]


def _null_formatter() -> object:
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _figure(ncols: int) -> tuple[Figure, list]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5 * ncols, 4.8), dpi=110, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _panels(report: BenchReport) -> tuple[Figure, list[tuple[Any, str, list[BenchRow]]]] | None:
    """A figure with one panel per preset: ``(figure, [(axes, preset, measured rows of the preset)])``, or None."""
    rows = _measured(report)
    presets = sorted({r.preset for r in rows})
    if not presets:
        return None
    fig, axes = _figure(len(presets))
    return fig, [(ax, p, [r for r in rows if r.preset == p]) for ax, p in zip(axes, presets, strict=True)]


def plot_latency(report: BenchReport) -> Figure | None:
    """p50 latency (log) vs megapixels, one line per backend/precision, one panel per preset. None if no data."""
    panels = _panels(report)
    if panels is None:
        return None
    fig, per_preset = panels
    for ax, preset, rows in per_preset:
        series: dict[str, list[BenchRow]] = defaultdict(list)
        for r in rows:
            series[r.label].append(r)
        for label, rs in sorted(series.items()):
            rs.sort(key=lambda r: _pixels(r.size))
            style = "--" if rs[0].kind == "reference" else "-"
            marker = "x" if any(r.status == "accuracy" for r in rs) else "o"
            ax.plot([_pixels(r.size) for r in rs], [r.p50_ms for r in rs], style, marker=marker, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({r.size for r in rows}, key=_pixels)
        ax.set_xticks([_pixels(sz) for sz in sizes], sizes, fontsize=7)
        ax.xaxis.set_minor_formatter(_null_formatter())
        x0 = ax.get_xlim()[0]
        for fps in (30, 60):
            ax.axhline(1000 / fps, color="grey", lw=0.6, ls=":")
            ax.text(x0, 1000 / fps, f" {fps} FPS", va="bottom", fontsize=7, color="grey")
        ax.set_xlabel("frame size (log of pixel count)")
        ax.set_ylabel("p50 latency per batch, ms (log)")
        ax.set_title(f"{preset}: latency vs resolution")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{report.host.cpu} ({report.host.cores} cores)", fontsize=9)
    return fig


def plot_fps(report: BenchReport) -> Figure | None:
    """Grouped FPS bars: one group per size, one bar per backend/precision; one panel per preset."""
    panels = _panels(report)
    if panels is None:
        return None
    fig, per_preset = panels
    for ax, preset, rs in per_preset:
        sizes = sorted({r.size for r in rs}, key=_pixels)
        labels = sorted({r.label for r in rs})
        width = 0.8 / max(1, len(labels))
        for i, label in enumerate(labels):
            by_size = {r.size: r for r in rs if r.label == label}
            xs = [j + (i - (len(labels) - 1) / 2) * width for j in range(len(sizes))]
            vals = [by_size[s].fps or 0.0 if s in by_size else 0.0 for s in sizes]
            hatch = ["//" if s in by_size and by_size[s].status == "accuracy" else "" for s in sizes]
            bars = ax.bar(xs, vals, width, label=label)
            for b, hh in zip(bars, hatch, strict=True):
                b.set_hatch(hh)
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_yscale("log")
        ax.set_ylabel("frames per second (log)")
        ax.set_title(f"{preset}: FPS by size (hatched = failed accuracy)")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
