"""Seed-compatible inference: ``python training/test.py --input PATH --output PATH`` does what ``lle enhance`` does.

    python training/test.py --input dark.jpg --output bright.jpg
    python training/test.py --input photos/ --output enhanced/ --preset realtime --weights my.safetensors
"""

from __future__ import annotations

import argparse
import sys

from lle.cli.app import main


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, nargs="+", help="image(s) or folder(s)")
    ap.add_argument("--output", required=True, help="output image (one input) or folder")
    ap.add_argument("--preset", default="quality", choices=["quality", "realtime"])
    ap.add_argument("--weights", help=".safetensors weights (default: the bundled ones)")
    ap.add_argument("--tile", type=int, default=0)
    a = ap.parse_args(argv)
    args = ["enhance", *a.input, "-o", a.output, "--preset", a.preset, "--tile", str(a.tile)]
    if a.weights:
        args += ["--weights", a.weights]
    main(args)


if __name__ == "__main__":
    cli(sys.argv[1:])
