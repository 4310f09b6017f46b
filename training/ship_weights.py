"""Copy a run's best weights into the package (lle/weights/<preset>.safetensors + card), adding the training history.

    python training/ship_weights.py runs/realtime/best.safetensors --history "run 1: ..." --history "run 2: ..."

Several weights files (each ``PATH[:SHARE]``) are averaged (lle.training.soup) and the card records the mix;
``--arch`` merges architecture settings that have no weights (e.g. ``'{"exposure_cap": [0.25, 0.4]}'``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from lle.models.checkpoint import ModelCard, load_card, save_model
from lle.models.registry import create_model
from lle.training.soup import average_weights, parse_share

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="PATH[:SHARE] ...; more than one are averaged")
    ap.add_argument("--history", action="append", default=[], help="one line per earlier (warm-start) run")
    ap.add_argument("--hardware", default="2-core x86-64 CPU (AMD EPYC, AVX2), 1 torch thread, fp32")
    ap.add_argument("--arch", default="{}", help="JSON merged into the card's arch (settings without weights)")
    ap.add_argument("--validate", type=Path, default=None,
                    help="recipe (training/configs/*.yaml) whose validation sets score the shipped float16 weights "
                         "for the card (else the card keeps the first file's scores)")
    a = ap.parse_args()
    parts = [parse_share(s) for s in a.weights]
    model, src = average_weights(parts)
    arch = {**src.arch, **json.loads(a.arch)}
    rebuilt = create_model(src.preset, **arch)
    rebuilt.load_state_dict(model.state_dict())  # type: ignore[attr-defined]
    training = {**src.training, "history": a.history, "hardware": a.hardware, "stored_as": "float16"}
    if len(parts) > 1:
        training["average_of"] = [{"weights": str(p), "share": s, "steps": load_card(p).training.get("steps")}
                                  for p, s in parts]  # fmt: skip
    out = ROOT / "lle" / "weights" / f"{src.preset}.safetensors"
    card = ModelCard(**{**asdict(src), "arch": arch, "training": training})
    save_model(rebuilt, out, card, half=True)
    if a.validate is not None:
        import torch

        from lle.config import load_config
        from lle.models.checkpoint import load_model
        from lle.training.config import TrainConfig
        from lle.training.data import build_data
        from lle.training.loop import evaluate_pairs

        recipe = load_config(TrainConfig, a.validate, [])
        data = build_data(recipe.data, recipe.seed)
        shipped, _ = load_model(out)
        with torch.no_grad():
            val = {k: evaluate_pairs(shipped, v, torch.device("cpu")) for k, v in data.val.items()}
        card = ModelCard(**{**asdict(card), "metrics": {"validation": val}})
        save_model(shipped, out, card, half=True)
    print(json.dumps({"written": str(out), "bytes": out.stat().st_size, "validation": card.metrics}, indent=1))


if __name__ == "__main__":
    main()
