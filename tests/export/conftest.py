"""Export fixtures: tiny models exported once per session, a small calibration set from calibration_data/."""

from __future__ import annotations

from pathlib import Path

import pytest

from lle.export.calibration import CalibrationSet
from lle.export.config import CalibrationConfig, ExportConfig

CALIB_DIR = Path(__file__).resolve().parents[2] / "calibration_data" / "images"
CALIB_HW = (64, 96)


@pytest.fixture(scope="session")
def export_cfg() -> ExportConfig:
    """Small sizes so every export runs in seconds; parity at two sizes per preset; float32 graphs (uint8 frame
    graphs have their own tests in test_frames.py)."""
    return ExportConfig(parity_hw=((32, 48), (64, 96)), calibration=CalibrationConfig(n=12, holdout=4, hw=CALIB_HW),
                        io="float32")


def make_calib(multiple: int) -> CalibrationSet:
    return CalibrationSet.from_dir(CALIB_DIR, n=12, hw=CALIB_HW, multiple=multiple, seed=0, holdout=4)


@pytest.fixture(scope="session")
def calib_factory():
    """make_calib(multiple) -> the test calibration set (12 images + 4 held out at 64x96)."""
    return make_calib


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_weights: dict[str, Path], export_cfg: ExportConfig
             ) -> dict[str, tuple[Path, CalibrationSet]]:
    """{preset: (model.onnx with reference + manifest, its calibration set)}."""
    from lle.export.onnx_export import to_onnx
    from lle.models.checkpoint import load_card

    out = {}
    for preset, w in tiny_weights.items():
        calib = make_calib(load_card(w).size_multiple)
        out[preset] = (to_onnx(w, tmp_path_factory.mktemp(f"onnx-{preset}"), export_cfg, calib), calib)
    return out
