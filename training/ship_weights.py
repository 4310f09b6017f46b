"""Copy a run's best weights into the package (lle/weights/<preset>.safetensors + card), adding the training history.

    python training/ship_weights.py runs/realtime/best.safetensors --history "run 1: ..." --history "run 2: ..."
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from lle.models.checkpoint import ModelCard, load_card, load_model, save_model

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("--history", action="append", default=[], help="one line per earlier (warm-start) run")
    ap.add_argument("--hardware", default="2-core x86-64 CPU (AMD EPYC, AVX2), 1 torch thread, fp32")
    a = ap.parse_args()
    model, card = load_model(a.weights)
    src = load_card(a.weights)
    training = {**src.training, "history": a.history, "hardware": a.hardware, "stored_as": "float16"}
    out = ROOT / "lle" / "weights" / f"{card.preset}.safetensors"
    save_model(model, out, ModelCard(**{**asdict(src), "training": training}), half=True)
    print(json.dumps({"written": str(out), "bytes": out.stat().st_size, "validation": src.metrics}, indent=1))


if __name__ == "__main__":
    main()
