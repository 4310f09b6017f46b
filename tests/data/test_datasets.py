from __future__ import annotations

import numpy as np
import pytest

from lle.data.datasets import load_pairs, resolve_pair_dirs, split_names
from lle.errors import DataError
from lle.io.image import write_image


def _img(h: int, w: int, v: float) -> np.ndarray:
    return np.full((h, w, 3), v, np.float32)


def test_pair_report_lists_every_problem(tmp_path) -> None:
    low, ref = tmp_path / "low_light", tmp_path / "ground_truth"
    for n in ("a.png", "b.png", "c.png", "d.png"):
        write_image(low / n, _img(8, 8, 0.1))
    write_image(ref / "a.png", _img(8, 8, 0.5))
    write_image(ref / "b.png", _img(8, 9, 0.5))
    (ref / "c.png").write_bytes(b"garbage")
    write_image(ref / "e.png", _img(8, 8, 0.5))
    assert resolve_pair_dirs(tmp_path) == (low, ref)
    rep = load_pairs(low, ref)
    assert [p.name for p in rep.pairs] == ["a.png"]
    assert rep.only_low == ["d.png"] and rep.only_ref == ["e.png"]
    assert rep.unreadable == ["c.png"] and rep.size_mismatch[0].startswith("b.png")
    assert len(rep.problems) == 4


def test_missing_layout_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataError, match="no paired layout"):
        resolve_pair_dirs(tmp_path)


def test_split_keeps_groups_together(tmp_path) -> None:
    names = [f"g{g}_{i}.png" for g in range(40) for i in range(3)]
    (tmp_path / "manifest.csv").write_text("name,scene_group\n" + "".join(f"{n},{n.split('_')[0]}\n" for n in names))
    train, val = split_names(names, 0.25, root=tmp_path, group_column="scene_group")
    assert train and val and not set(train) & set(val)
    assert {n.split("_")[0] for n in train}.isdisjoint({n.split("_")[0] for n in val})
    assert split_names(names, 0.25, root=tmp_path, group_column="scene_group") == (train, val)
