"""Seed-compatible training entry point.

    python training/train.py                       # quality preset on data/low_light + data/ground_truth
    python training/train.py --preset realtime --data DIR --clean CLEAN_DIR --steps 5000

Equivalent to ``lle train`` with the matching --set overrides; everything else comes from
training/configs/<preset>.yaml when it exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lle.cli.app import main

HERE = Path(__file__).resolve().parent


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quality", choices=["quality", "realtime"])
    ap.add_argument("--data", default="data", help="root holding low_light/ + ground_truth/ (default: data)")
    ap.add_argument("--clean", action="append", default=[], help="folder of clean photos for synthetic pairs")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--out", help="output folder (default runs/<preset>)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="extra key=value overrides")
    a = ap.parse_args(argv)
    args = ["train", "--set", f"model.preset={a.preset}", "--set", f"data.pairs=[{a.data}]"]
    args += ["--set", f"data.clean=[{', '.join(a.clean)}]", "--set", "data.val_pairs=[]"]
    cfg = HERE / "configs" / f"{a.preset}.yaml"
    if cfg.is_file():
        args += ["--config", str(cfg)]
    if a.steps:
        args += ["--set", f"steps={a.steps}"]
    args += ["--set", f"out_dir={a.out or f'runs/{a.preset}'}"]
    for ov in a.overrides:
        args += ["--set", ov]
    if a.resume:
        args.append("--resume")
    main(args)


if __name__ == "__main__":
    cli(sys.argv[1:])
