"""Record the benchmark reports in benchmarks/results/<machine>/ for both presets (what benchmarks/README.md cites).

    python benchmarks/run_bench.py --quality runs/quality/best.safetensors --realtime runs/realtime/best.safetensors

Equivalent to two ``lle bench`` calls (printed before each run); kept as a script so the recorded settings are exact.
Run it on an otherwise idle machine: anything else using the CPU makes the numbers meaningless.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"realtime": "640x360,1280x720,1920x1080,3840x2160", "quality": "640x360,1280x720,1920x1080"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", type=Path, help="quality preset weights (.safetensors)")
    ap.add_argument("--realtime", type=Path, help="realtime preset weights (.safetensors)")
    ap.add_argument("--backends", default="torch,onnxruntime,openvino,tensorrt")
    ap.add_argument("--precisions", default="fp32,bf16,fp16,int8")
    ap.add_argument("--seconds", default="3")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>/")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/lle-bench-cache"))
    ap.add_argument("--calib", type=Path, default=ROOT / "calibration_data" / "images")
    args, extra = ap.parse_known_args()
    from lle.cli.app import main as lle

    for preset in ("realtime", "quality"):
        weights = getattr(args, preset)
        if weights is None:
            continue
        argv = ["bench", "--weights", str(weights), "--backends", args.backends, "--precisions", args.precisions,
                "--sizes", SIZES[preset], "--seconds", args.seconds, "--calib", str(args.calib),
                "--cache-dir", str(args.cache_dir), "--name", f"bench-{preset}", *extra]  # fmt: skip
        if args.out is not None:
            argv += ["--out", str(args.out)]
        print("lle " + shlex.join(argv), file=sys.stderr)
        sys.argv = ["lle", *argv]
        try:
            lle(argv)
        except SystemExit as e:
            if e.code:
                raise


if __name__ == "__main__":
    main()
