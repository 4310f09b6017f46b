"""A third-party backend registered under the lle.backends entry points is selectable by name in `lle run`."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from lle.backends.base import Backend, TensorSpec
from lle.cli.app import app


class Invert(Backend):
    """Takes uint8 BGR frames and returns their negative."""

    name, extra = "invert", ""

    def load(self) -> None:
        return None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return 255 - batch

    @property
    def input_spec(self) -> TensorSpec:
        return TensorSpec.for_frames()


def test_entry_point_backend_runs_by_name(tmp_path: Path, monkeypatch) -> None:
    import lle.backends.registry as registry

    ep = EntryPoint(name="invert", value=f"{__name__}:Invert", group="lle.backends")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "lle.backends" else [])
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((8, 10, 3), 40, np.uint8))
    model = tmp_path / "anything.bin"
    model.write_bytes(b"x")
    r = CliRunner().invoke(app, ["run", str(model), "--backend", "invert", "--source", str(src),
                                 "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 0, r.output
    assert (cv2.imread(str(tmp_path / "out.png")) == 215).all()
