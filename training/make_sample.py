"""Make lle/assets/sample_dark.jpg: scikit-image's bundled astronaut photo (NASA, public domain), darkened.

Run: python training/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

from lle.data.synth import DegradeParams, degrade
from lle.io.image import write_image

img = data.astronaut().astype(np.float32) / 255.0
p = DegradeParams(ev=3.5, wb=(1.05, 1.0, 0.92), photons_at_white=800.0, read_noise=0.002)
low = degrade(img, p, np.random.default_rng(0))
out = Path(__file__).resolve().parent.parent / "lle" / "assets" / "sample_dark.jpg"
write_image(out, low)
print(f"wrote {out} (mean {low.mean():.3f})")
