"""A third-party backend, installed as its own distribution with an ``lle.backends`` entry point, runs by name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from lle.cli.app import app

_MODULE = '''
"""An out-of-tree lle backend: takes uint8 BGR frames and returns their negative."""
import numpy as np

from lle.backends.base import Backend, TensorSpec


class Invert(Backend):
    name, extra = "invert", ""

    def load(self) -> None:
        return None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return 255 - batch

    @property
    def input_spec(self) -> TensorSpec:
        return TensorSpec.for_frames()
'''


def _install_distribution(site: Path) -> None:
    """What ``pip install lle-invert`` leaves in site-packages: the module and a dist-info with entry_points.txt."""
    (site / "lle_invert_backend.py").write_text(_MODULE)
    info = site / "lle_invert-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lle-invert\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [lle.backends]
        invert = lle_invert_backend:Invert
    """))


def _run_invert(tmp_path: Path):
    """``lle run anything.bin --backend invert`` on one dark frame."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((8, 10, 3), 40, np.uint8))
    model = tmp_path / "anything.bin"
    model.write_bytes(b"x")
    return CliRunner().invoke(app, ["run", str(model), "--backend", "invert", "--source", str(src),
                                    "-o", str(tmp_path / "out.png")])


def test_entry_point_backend_from_an_installed_distribution_runs_by_name(tmp_path: Path, monkeypatch) -> None:
    from lle.backends import list_backends

    site = tmp_path / "site"
    site.mkdir()
    _install_distribution(site)
    monkeypatch.syspath_prepend(str(site))
    assert "invert" in list_backends()
    r = _run_invert(tmp_path)
    assert r.exit_code == 0, r.output
    assert (cv2.imread(str(tmp_path / "out.png")) == 215).all()


def test_without_the_distribution_the_name_is_unknown(tmp_path: Path) -> None:
    r = _run_invert(tmp_path)
    assert r.exit_code != 0 and "invert" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out.png").exists()
