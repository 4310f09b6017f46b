"""Benchmark results and their renderings: rich table, JSON, CSV and markdown, each with the host it ran on.

Every file is written atomically (temp file + rename), so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lle.errors import InputError

__all__ = [
    "STATUS_MARK", "BenchReport", "BenchRow", "HostInfo", "collect_host", "machine_slug", "render_markdown",
    "read_report", "render_table", "to_csv", "to_json",
]

STATUS_MARK = {"ok": "✅", "accuracy": "❎", "error": "❌"}
_LIBS = ("lle", "numpy", "opencv-python-headless", "torch", "onnx", "onnxruntime", "openvino", "nncf", "tensorrt")


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One measured combination at one size. Latencies in ms per batch; ``fps`` counts frames (batch x calls/s).

    ``kind``: ``model`` (an artifact), ``reference`` (torch eager FP32 or the resize+copy floor) or ``video``
    (end to end). ``status``: ``ok`` (ran, accurate), ``accuracy`` (ran, failed the PSNR/NaN check), ``error``
    (could not export/load/run; ``reason`` says why).
    """

    preset: str
    backend: str
    precision: str
    size: str
    status: str
    kind: str = "model"
    reason: str = ""
    device: str = ""
    batch: int = 1
    iters: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    fps: float | None = None
    pre_ms: float | None = None
    infer_ms: float | None = None
    post_ms: float | None = None
    peak_rss_mb: float | None = None
    gpu_mem_mb: float | None = None
    artifact: str = ""
    artifact_mb: float | None = None
    psnr_db: float | None = None
    min_psnr_db: float | None = None
    speedup_vs_eager: float | None = None
    runtime_version: str = ""

    @property
    def mark(self) -> str:
        """✅, ❎ or ❌."""
        return STATUS_MARK.get(self.status, "?")

    @property
    def label(self) -> str:
        """``backend/precision`` (the series name in plots)."""
        return f"{self.backend}/{self.precision}" if self.precision else self.backend


@dataclass(frozen=True, slots=True)
class HostInfo:
    """The machine and software a report was measured with."""

    cpu: str
    cores: int
    cpu_flags: list[str]
    gpus: list[str]
    os: str
    python: str
    libraries: dict[str, str]
    git_sha: str
    command: str
    date: str
    slug: str


@dataclass(frozen=True, slots=True)
class BenchReport:
    """Rows plus host, settings and a per-size summary (best artifact, speed-up over torch eager)."""

    host: HostInfo
    settings: dict[str, Any]
    rows: list[BenchRow]
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; ``mark`` is added to every row."""
        rows = [{**dataclasses.asdict(r), "mark": r.mark} for r in self.rows]
        return {"host": dataclasses.asdict(self.host), "settings": self.settings, "summary": self.summary, "rows": rows}


def _git_sha() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return f"{sha}{'-dirty' if sha and dirty else ''}"


def machine_slug(cpu: str, cores: int, gpus: list[str]) -> str:
    """Folder name for a machine: ``amd-epyc-2c``, ``intel-core-i7-1185g7-8c-nvidia-h100``.

    Example:
        >>> machine_slug("AMD EPYC 7B13 64-Core Processor", 2, [])
        'amd-epyc-7b13-2c'
    """
    def slug(text: str) -> str:
        text = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*$|\d+-core|with radeon.*$", " ", text.lower())
        return re.sub(r"[^a-z0-9]+", "-", text).strip("-")

    parts = [slug(cpu) or platform.machine().lower(), f"{cores}c"]
    if gpus:
        g = re.sub(r"^gpu \d+: | \(uuid.*$", "", gpus[0].lower())
        parts.append(slug(g))
    return "-".join(p for p in parts if p)


def collect_host(command: str = "") -> HostInfo:
    """CPU model, core count, CPU flags, GPUs, OS, library versions (no runtime is imported), git sha, UTC date."""
    from lle.host import cpu_features, gpus, versions

    cpu, flags = cpu_features()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    g = gpus()
    return HostInfo(
        cpu=cpu, cores=cores, cpu_flags=flags, gpus=g, os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0], libraries=versions(_LIBS), git_sha=_git_sha(),
        command=command or " ".join(["lle", *sys.argv[1:]]),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), slug=machine_slug(cpu, cores, g),
    )  # fmt: skip


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return _fmt(v, 2 if v < 10 else 1 if v < 1000 else 0)


_COLUMNS = ("", "preset", "backend", "prec", "size", "p50 ms", "p90 ms", "p99 ms", "FPS", "pre/infer/post ms",
            "PSNR dB", "RSS MB", "size MB", "x eager", "note")  # fmt: skip
_NUMERIC = ("ms", "FPS", "MB", "dB", "eager")


def _cells(r: BenchRow) -> list[str]:
    split = "/".join(_ms(v) for v in (r.pre_ms, r.infer_ms, r.post_ms)) if r.infer_ms is not None else "-"
    note = r.reason or ("reference" if r.kind == "reference" else "")
    note = note if len(note) <= 140 else note[:139] + "…"  # the full reason is in the JSON/CSV
    psnr = _fmt(r.psnr_db) + (f" (>={r.min_psnr_db:g})" if r.min_psnr_db is not None and r.psnr_db is not None else "")
    mem = _fmt(r.peak_rss_mb, 0) + (f" +{_fmt(r.gpu_mem_mb, 0)} GPU" if r.gpu_mem_mb is not None else "")
    return [r.mark, r.preset, r.backend, r.precision, r.size, _ms(r.p50_ms), _ms(r.p90_ms), _ms(r.p99_ms),
            _fmt(r.fps), split, psnr, mem, _fmt(r.artifact_mb, 2), _fmt(r.speedup_vs_eager, 2), note]  # fmt: skip


_COMPACT = {"", "preset", "backend", "prec", "size", "p50 ms", "p99 ms", "FPS", "PSNR dB", "note"}


def render_table(report: BenchReport, *, width: int | None = None) -> Any:
    """A ``rich.table.Table`` of every row; below 150 columns of ``width``, only the key columns (files have all)."""
    from rich.markup import escape
    from rich.table import Table

    h = report.host
    presets = {r.preset for r in report.rows}
    title = f"lle bench {'/'.join(sorted(presets))} - {h.cpu} ({h.cores} cores){' + ' + h.gpus[0] if h.gpus else ''}"
    t = Table(title=title, title_justify="left", pad_edge=False, collapse_padding=True)
    compact = width is not None and width < 150
    cols = [i for i, c in enumerate(_COLUMNS)
            if not (c == "preset" and len(presets) == 1) and (not compact or c in _COMPACT)]  # fmt: skip
    for i in cols:
        c = _COLUMNS[i]
        t.add_column(c, justify="right" if c.endswith(_NUMERIC) else "left", overflow="fold",
                     no_wrap=c not in {"note", "pre/infer/post ms"}, min_width=12 if c == "note" else None)  # fmt: skip
    for r in report.rows:
        cells = _cells(r)
        if compact:
            cells[10] = _fmt(r.psnr_db)
        style = "red" if r.status == "error" else "yellow" if r.status == "accuracy" else None
        t.add_row(*(escape(cells[i]) for i in cols), style=style)
    return t


def to_json(report: BenchReport) -> str:
    """The report as indented JSON (NaN written as null)."""

    def clean(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(report.to_dict()), indent=2, sort_keys=False) + "\n"


def to_csv(report: BenchReport) -> str:
    """One CSV line per row, every :class:`BenchRow` field plus ``mark``."""
    names = [f.name for f in dataclasses.fields(BenchRow)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["mark", *names], lineterminator="\n")
    w.writeheader()
    for r in report.rows:
        w.writerow({"mark": r.mark, **{k: ("" if v is None else v) for k, v in dataclasses.asdict(r).items()}})
    return buf.getvalue()


def render_markdown(report: BenchReport, *, plots: list[str] | None = None) -> str:
    """A self-contained markdown report: host, settings, summary, the full table, plots, and the status legend."""
    h = report.host
    lines = [
        f"# lle bench: {h.slug}", "",
        f"- **Machine:** {h.cpu}, {h.cores} cores" + (f"; GPU: {', '.join(h.gpus)}" if h.gpus else "; no GPU"),
        f"- **CPU flags:** {', '.join(h.cpu_flags) or '-'}",
        f"- **OS / Python:** {h.os} / {h.python}",
        f"- **Libraries:** {', '.join(f'{k} {v}' for k, v in h.libraries.items())}",
        f"- **Git:** {h.git_sha or '-'}  **Date:** {h.date}",
        f"- **Command:** `{h.command}`",
        f"- **Settings:** {', '.join(f'{k}={v}' for k, v in report.settings.items())}", "",
    ]  # fmt: skip
    if report.summary:
        lines += ["## Best per size", "",
                  "| preset | size | best (status ✅) | FPS | p50 ms | PSNR dB | torch eager FPS | speed-up |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for s in report.summary.get("best", []):
            lines.append(f"| {s['preset']} | {s['size']} | {s['label']} | {_fmt(s['fps'])} | {_ms(s['p50_ms'])} | "
                         f"{_fmt(s.get('psnr_db'))} | "
                         f"{_fmt(s.get('eager_fps'))} | {_fmt(s.get('speedup'), 2)} |")  # fmt: skip
        lines.append("")
    align = ["---:" if c.endswith(_NUMERIC) else "---" for c in _COLUMNS]
    lines += ["## All rows", "", "| " + " | ".join(c or "status" for c in _COLUMNS) + " |", "|" + "|".join(align) + "|"]
    for r in report.rows:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |")
    lines += ["", "✅ ran and matched torch FP32 within the PSNR threshold · ❎ ran but failed the accuracy check "
              "(NaN, black output or PSNR below threshold) · ❌ could not export/load/run (reason given).",
              "Latency is per batch, from uint8 HWC frame in to uint8 HWC frame out (pre + infer + post); FPS = "
              "batch / p50. PSNR is the worst over the test frames against torch FP32 eager on the same frames.", ""]
    for p in plots or []:
        lines += [f"![{Path(p).stem}]({p})", ""]
    return "\n".join(lines)


def read_report(path: Path) -> BenchReport:
    """Load a report written by :func:`to_json` (e.g. to re-render its markdown and plots).

    Raises:
        InputError: not a bench report JSON.
    """
    try:
        d = json.loads(Path(path).read_text())
        rows = [BenchRow(**{k: v for k, v in r.items() if k != "mark"}) for r in d["rows"]]
        return BenchReport(HostInfo(**d["host"]), d["settings"], rows, d.get("summary", {}))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path} is not an lle bench report: {err}") from err
