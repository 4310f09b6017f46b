"""Quality-preset architecture candidates vs an IAT timing twin: params, GMACs, OpenVINO CPU latency, in one run.

    python benchmarks/quality_arch.py [--iters 10] [--warmup 2] [--threads 2] [--size 1280x720]
                                      [--ov-precision default,f32] [--onnxruntime]
                                      [--out benchmarks/results/quality_arch.md]

Models: the IAT twin (benchmarks/twins.py, random weights, published architecture), the quality preset as shipped
(width 16, depth 4, exposure cap and highlight knee of lle/weights/quality.json) and candidates with widths 12, 20
and 24 at depth 4 plus width 16 at depth 3 (same cap and knee). Weights do not change the cost, so none are loaded.

Every model goes through the same path: ``lle.export.onnx_export.export_onnx`` (torch.onnx.export, opset 17,
dynamic N/H/W, onnxslim, onnx.checker) into a temporary folder; OpenVINO then runs ``openvino.convert_model`` on the
ONNX, reshapes it to the static input 1x3xHxW float32 and compiles it for CPU with ``INFERENCE_NUM_THREADS`` and
``PERFORMANCE_HINT=LATENCY``; ``--ov-precision`` lists the ``INFERENCE_PRECISION_HINT`` settings to time (``default``:
leave it to OpenVINO, whose choice is read back from the compiled model and recorded). ``--onnxruntime`` adds
onnxruntime CPU (intra-op threads = ``--threads``, inter-op 1, all graph optimisations).

After ``--warmup`` calls each, the timed calls are interleaved round-robin over every (model, runtime) pair, the
starting pair rotating each round, so background load falls on all of them alike. The table gives the median (min)
of ``--iters`` calls and ``x IAT`` = IAT ms / model ms (> 1: faster than IAT). GMACs are torch.utils.flop_counter
FLOPs / 2 at the timed size (convolutions and matrix products; element-wise ops, GELU, softmax are not counted).

Writes a markdown table with the date, machine (``lle info``), versions, the command and whether an ``lle train`` job
was running in the background.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twins import IATTwin, count_params  # noqa: E402

from lle import __version__  # noqa: E402
from lle.host import cpu_features, versions  # noqa: E402

QUALITY_CAP = [0.2, 0.4, 0.25, 0.4, 0.7, 0.7]
QUALITY_KNEE = 0.8
SHIPPED = (16, 4)
CANDIDATES = [(12, 4), (16, 4), (20, 4), (24, 4), (16, 3)]
BASELINE = "IAT twin"


@dataclass
class Graph:
    """One model to time: its exported ONNX, the feeds of the timed call and its size."""

    name: str
    onnx: Path
    feeds: dict[str, np.ndarray]
    params: int
    gmacs: float
    note: str = ""
    size: str = ""
    """Input size label (W x H)."""
    ref: str = ""
    """Name of the graph this one's speed ratio is taken against (at the same ``size``); empty: none."""
    times: dict[str, list[float]] = field(default_factory=dict)
    """Runtime label -> timed calls (ms)."""


# ------------------------------------------------------------------------------------------------ shared harness
def parse_hw(text: str) -> tuple[int, int]:
    """``"1280x720"`` (W x H, as frame sizes are written) -> (H, W)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def count_gmacs(model: nn.Module, args: Sequence[torch.Tensor]) -> float:
    """Multiply-accumulates (G) of one forward call, torch.utils.flop_counter FLOPs / 2."""
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(*args)
    return fc.get_total_flops() / 2e9


def export_graph(model: nn.Module, path: Path, io: str = "float32") -> Path:
    """``model`` -> ONNX at ``path`` through lle's exporter (the path ``lle export`` takes; dynamic N/H/W)."""
    from lle.export.onnx_export import export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_onnx(model.eval(), path, io=io)


Runner = Callable[[], Any]


def ov_runner(path: Path, feeds: dict[str, np.ndarray], *, threads: int, precision: str) -> tuple[Runner, str]:
    """A zero-argument call running ``path`` in OpenVINO CPU on ``feeds`` (static shapes), and the precision it uses.

    ``precision``: ``default`` (OpenVINO's choice) or an ``INFERENCE_PRECISION_HINT`` value (``f32``, ``bf16``).
    """
    from lle._lazy import require

    ov = require("openvino", extra="openvino")  # through lle: telemetry off
    core = ov.Core()
    model = ov.convert_model(str(path))
    model.reshape({name: list(x.shape) for name, x in feeds.items()})
    cfg = {"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}
    if precision != "default":
        cfg["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", cfg)
    used = compiled.get_property("INFERENCE_PRECISION_HINT")
    req = compiled.create_infer_request()
    return (lambda: req.infer(feeds, share_inputs=True)), used.to_string()


def ort_runner(path: Path, feeds: dict[str, np.ndarray], *, threads: int) -> Runner:
    """A zero-argument call running ``path`` in onnxruntime CPU on ``feeds``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds)


def round_robin(calls: dict[Any, Runner], *, iters: int, warmup: int) -> dict[Any, list[float]]:
    """Time every call ``iters`` times (ms), interleaved: one call of each per round, the first rotating each round."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    keys = list(calls)
    out: dict[Any, list[float]] = {k: [] for k in keys}
    for i in range(iters):
        for k in keys[i % len(keys):] + keys[: i % len(keys)]:
            t0 = time.perf_counter()
            calls[k]()
            out[k].append((time.perf_counter() - t0) * 1000.0)
        print(f"round {i + 1}/{iters}", file=sys.stderr, flush=True)
    return out


def add_runtimes(graphs: Sequence[Graph], *, threads: int, ov_precisions: Sequence[str], onnxruntime: bool,
                 iters: int, warmup: int) -> tuple[list[str], dict[str, str]]:
    """Load every graph in every runtime, time them round-robin into ``Graph.times``.

    Returns:
        The runtime labels in column order, and ``{label: what it is}`` (OpenVINO's precision as read back).
    """
    calls: dict[tuple[int, str], Runner] = {}
    meaning: dict[str, str] = {}
    for prec in ov_precisions:
        runners: dict[int, Runner] = {}
        used: set[str] = set()
        for i, g in enumerate(graphs):
            runners[i], u = ov_runner(g.onnx, g.feeds, threads=threads, precision=prec)
            used.add(u)
        shown = "/".join(sorted(used))
        label = f"OpenVINO {shown}" + (" (default)" if prec == "default" else "")
        calls |= {(i, label): fn for i, fn in runners.items()}
        meaning[label] = "OpenVINO CPU, INFERENCE_PRECISION_HINT " + (
            f"not set: OpenVINO chose {shown} on this CPU" if prec == "default" else f"= {shown}")
    if onnxruntime:
        calls |= {(i, "onnxruntime"): ort_runner(g.onnx, g.feeds, threads=threads) for i, g in enumerate(graphs)}
        meaning["onnxruntime"] = "onnxruntime CPUExecutionProvider, fp32"
    print(f"timing {len(calls)} (model, runtime) pairs x {iters} rounds", file=sys.stderr, flush=True)
    times = round_robin(calls, iters=iters, warmup=warmup)
    labels = list(meaning)
    for i, g in enumerate(graphs):
        g.times = {lab: times[(i, lab)] for lab in labels}
    return labels, meaning


def background_jobs() -> list[str]:
    """Command lines of running ``lle train`` processes (``pgrep -af``), empty when none or pgrep is missing."""
    try:
        res = subprocess.run(["pgrep", "-af", "lle train"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln for ln in res.stdout.splitlines() if ln.strip() and str(os.getpid()) != ln.split()[0]]


def lle_info() -> str:
    """``lle info`` output (plain text, 100 columns), or a one-line cpu_features() fallback."""
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb")
    try:
        res = subprocess.run(["lle", "info"], capture_output=True, text=True, timeout=60, check=False, env=env)
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.rstrip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    model, feats = cpu_features()
    return f"CPU: {model}, {os.cpu_count()} logical cores; features: {', '.join(feats)}"


def header(title: str, *, threads: int, iters: int, warmup: int, meaning: dict[str, str],
           export_note: str) -> list[str]:
    """The report's preamble: date, machine, versions, command, method, background load."""
    model_name, feats = cpu_features()
    vers = versions(["torch", "onnx", "onnxslim", "onnxruntime", "openvino"])
    jobs = background_jobs()
    lines = [
        f"# {title}",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {model_name}, {os.cpu_count()} logical cores, features: {', '.join(feats)}",
        f"- versions: lle {__version__}, " + ", ".join(f"{k} {v}" for k, v in vers.items()) + f" ({platform.system()})",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- latency: batch 1, {threads} threads, median (min) of {iters} timed calls after {warmup} warm-up calls "
        "each, interleaved round-robin over every (model, runtime) pair",
        f"- export: {export_note}",
    ]
    lines += [f"- {label}: {text}" for label, text in meaning.items()]
    if jobs:
        pid, _, cmd = jobs[0].partition(" ")
        cmd = cmd[cmd.find("lle train"):]
        cmd = cmd if len(cmd) <= 90 else cmd[:90] + " ..."
        lines.append(f"- **background load**: a training job was running on this machine during the measurement "
                     f"(pid {pid}: `{cmd}`); absolute times are inflated and noisier, the interleaving spreads the "
                     "load over all rows alike, so compare the ratios")
    else:
        lines.append("- background load: no `lle train` job was running")
    lines += ["", "`lle info`:", "", "```", lle_info(), "```", ""]
    return lines


def table(graphs: Sequence[Graph], labels: Sequence[str], baseline: str, *, size_col: bool = False) -> list[str]:
    """Markdown rows: name, params, GMACs, then per runtime median (min) ms and ``x <baseline>``.

    ``x <baseline>`` = ms of the row's ``ref`` graph at the same ``size`` / the row's ms ("-" without one).
    """
    head = ["model"] + (["size"] if size_col else []) + ["params", "GMACs"]
    for lab in labels:
        head += [f"{lab} ms", f"x {baseline}"]
    n_text = 2 if size_col else 1
    rows = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * n_text + ["---:"] * (len(head) - n_text)) + "|"]
    for g in graphs:
        ref = next((b for b in graphs if g.ref and b.name == g.ref and b.size == g.size), None)
        cells = [g.name + (f" ({g.note})" if g.note else "")] + ([g.size] if size_col else [])
        cells += [f"{g.params / 1e3:,.1f} K", f"{g.gmacs:.2f}"]
        for lab in labels:
            med = statistics.median(g.times[lab])
            cells.append(f"{med:.1f} ({min(g.times[lab]):.1f})")
            cells.append(f"{statistics.median(ref.times[lab]) / med:.2f}" if ref is not None else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


# ------------------------------------------------------------------------------------------------------------ main
def write_report(out: Path, lines: list[str]) -> None:
    """Write the markdown ``lines`` to ``out`` (creating its folder) and echo them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=10, help="timed calls per (model, runtime)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per (model, runtime) first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="1280x720", help="static input W x H")
    ap.add_argument("--ov-precision", default="default,f32",
                    help="comma-separated OpenVINO INFERENCE_PRECISION_HINT values to time; default = OpenVINO's")
    ap.add_argument("--onnxruntime", action="store_true", help="also time onnxruntime CPU")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quality_arch.md"))
    a = ap.parse_args()
    torch.set_num_threads(1)  # torch only counts MACs here (one thread avoids stalls on a busy CPU)
    from lle.models import create_model

    h, w = parse_hw(a.size)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32))
    models: list[tuple[str, nn.Module, str]] = [(BASELINE, IATTwin(), "random weights")]
    for width, depth in [SHIPPED] + [c for c in CANDIDATES if c != SHIPPED]:
        name = "quality shipped w16 d4" if (width, depth) == SHIPPED else f"quality w{width} d{depth}"
        m = create_model("quality", width=width, depth=depth, exposure_cap=QUALITY_CAP, highlight_knee=QUALITY_KNEE)
        mult = int(getattr(m, "size_multiple", 1))
        if h % mult or w % mult:
            raise SystemExit(f"{a.size} is not a multiple of {mult} ({name})")
        models.append((name, m, ""))
    graphs = []
    with tempfile.TemporaryDirectory(prefix="quality_arch_") as tmp:
        for i, (name, m, note) in enumerate(models):
            m.eval()
            params, gmacs = count_params(m), count_gmacs(m, (x,))
            path = export_graph(m, Path(tmp) / f"m{i}.onnx")
            graphs.append(Graph(name, path, {"input": x.numpy()}, params, gmacs, note, size=f"{w}x{h}", ref=BASELINE))
            print(f"{name}: {params:,} params, {gmacs:.2f} GMACs", file=sys.stderr, flush=True)
        labels, meaning = add_runtimes(graphs, threads=a.threads, ov_precisions=a.ov_precision.split(","),
                                       onnxruntime=a.onnxruntime, iters=a.iters, warmup=a.warmup)
    lines = header(f"Quality-preset candidates vs an IAT timing twin, {w}x{h}", threads=a.threads, iters=a.iters,
                   warmup=a.warmup, meaning=meaning,
                   export_note="every model through lle.export.onnx_export.export_onnx (torch.onnx.export, opset 17, "
                   f"dynamic N/H/W, onnxslim), float32 NCHW input 1x3x{h}x{w}, OpenVINO reshaped to that static "
                   "shape; GMACs: torch.utils.flop_counter FLOPs / 2 (conv and matmul only)")
    lines += [
        f"IAT twin: benchmarks/twins.py `IATTwin`, the published IAT (LOL configuration) rebuilt layer for layer with "
        "random weights; only its speed means anything. Quality models: `create_model('quality', width=W, depth=D, "
        f"exposure_cap={QUALITY_CAP}, highlight_knee={QUALITY_KNEE})`, untrained (speed does not depend on weights). "
        f"x {BASELINE} = {BASELINE} ms / model ms: above 1 the model is faster than IAT.",
        "",
        *table(graphs, labels, BASELINE),
    ]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
