"""Parameters, GMACs and torch eager CPU latency of both presets at 1280x720 and 1920x1080.

    python benchmarks/model_cost.py [--threads 2] [--iters 5] [--out benchmarks/results/model_cost.md]

GMACs are counted by torch.utils.flop_counter (FLOPs / 2) on the padded input actually run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from lle import __version__
from lle.host import cpu_features
from lle.models import create_model
from lle.pipeline import pad_to_multiple

SIZES = [(1280, 720), (1920, 1080)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/model_cost.md"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for preset in ("quality", "realtime"):
        model = create_model(preset).eval()
        params = sum(p.numel() for p in model.parameters())
        for w, h in SIZES:
            x, _ = pad_to_multiple(np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32), model.size_multiple)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                with FlopCounterMode(display=False) as fc:
                    model(xt)
                gmac = fc.get_total_flops() / 2e9
                model(xt)
                times = []
                for _ in range(a.iters):
                    t = time.perf_counter()
                    model(xt)
                    times.append((time.perf_counter() - t) * 1000)
            rows.append((preset, params, f"{w}x{h}", gmac, statistics.median(times), min(times)))
            print(rows[-1], flush=True)
    model_name, feats = cpu_features()
    lines = [
        "# Model cost: parameters, GMACs, torch eager CPU latency",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {model_name}, {torch.get_num_threads()} torch threads, features: {', '.join(feats)}",
        f"- versions: lle {__version__}, torch {torch.__version__}, Python {platform.python_version()}",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- latency: fp32, batch 1, median of {a.iters} runs after one warm-up (min in brackets)",
        "",
        "| preset | params | size | GMACs | torch CPU latency (ms) |",
        "|---|---:|---|---:|---:|",
    ]
    for preset, params, size, gmac, med, mn in rows:
        lines.append(f"| {preset} | {params / 1e6:.2f} M | {size} | {gmac:.1f} | {med:.0f} ({mn:.0f}) |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
