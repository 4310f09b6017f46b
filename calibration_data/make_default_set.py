"""Regenerate the default INT8 calibration set in calibration_data/images/ (deterministic, no network).

Sources are the colour photos bundled inside scikit-image (``skimage.data``; shipped with the package, no download).
Each image gives several seeded random crops (varied scale, flips), resized to at most 320 px, darkened with the
project's own synthetic low-light model (``lle.data.synth.synthesize``: exposure cut, white-balance shift, shot and
read noise, 8-bit quantisation) and saved as JPEG quality 88
(4:2:0), about 1.5 MB for the 64 images.

    python calibration_data/make_default_set.py            # writes calibration_data/images/*.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from lle.data.synth import SynthConfig, synthesize

SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
           "stereo_motorcycle", "colorwheel")


def _load(name: str) -> np.ndarray | None:
    img = getattr(data, name)()
    if isinstance(img, tuple):
        img = img[0]
    if img.ndim != 3 or img.shape[2] < 3:
        return None
    return img[..., :3].astype(np.float32) / 255.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    photos = {n: img for n in SOURCES if (img := _load(n)) is not None}
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.jpg"):
        old.unlink()
    names = sorted(photos)
    synth = SynthConfig(ev=(1.5, 4.5))
    for i in range(args.n):
        name = names[i % len(names)]
        img = photos[name]
        h, w = img.shape[:2]
        frac = rng.uniform(0.45, 1.0)
        ch, cw = max(32, int(h * frac)), max(32, int(w * frac * rng.uniform(0.8, 1.25)))
        ch, cw = min(ch, h), min(cw, w)
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        s = args.max_side / max(crop.shape[:2])
        if s < 1:
            crop = cv2.resize(np.ascontiguousarray(crop), (round(crop.shape[1] * s), round(crop.shape[0] * s)),
                              interpolation=cv2.INTER_AREA)
        low, _ = synthesize(np.ascontiguousarray(crop), synth, rng)
        bgr = cv2.cvtColor((np.clip(low, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(args.out / f"{i:03d}_{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])
    total = sum(p.stat().st_size for p in args.out.glob("*.jpg"))
    print(f"wrote {args.n} images ({total / 1e6:.2f} MB) to {args.out}")


if __name__ == "__main__":
    main()
