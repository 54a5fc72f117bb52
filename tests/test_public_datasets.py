"""Public test sets load from their standard layout and say exactly what is missing."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from infvsr_bench.app.cli import main
from infvsr_bench.errors import ConfigError
from vsr_datasets.benchmark import load_dataset
from vsr_datasets.public import PUBLIC_SETS

UDM10 = ["archpeople", "archwall", "auditorium", "band", "caffe", "camera", "clap", "lake", "photography", "polyflow"]


def _frames(folder, n, size):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


@pytest.fixture
def udm10_tree(tmp_path):
    root = tmp_path / "UDM10"
    for clip in UDM10:
        _frames(root / "GT" / clip, 32, (32, 32))
        _frames(root / "BIx4" / clip, 32, (8, 8))
        _frames(root / "BDx4" / clip, 32, (8, 8))
    return root


def _udm10(root, degradation="BIx4"):
    return load_dataset({"name": "udm10", "kind": "public", "set": "udm10", "root": str(root),
                         "degradation": degradation})


def test_udm10_layout_loads_with_names_and_frame_counts(udm10_tree):
    ds = _udm10(udm10_tree, "BDx4")
    assert [c.name for c in ds.clips] == sorted(UDM10)
    assert all(c.lr.parent.name == "BDx4" and c.gt.parent.name == "GT" for c in ds.clips)
    assert PUBLIC_SETS.get("udm10").clips == {c: 32 for c in UDM10}


def test_missing_extra_and_short_clips_are_named(udm10_tree):
    shutil.rmtree(udm10_tree / "BIx4" / "lake")
    with pytest.raises(ConfigError, match=r"clip\(s\) \['lake'\] missing from .*BIx4"):
        _udm10(udm10_tree)
    _frames(udm10_tree / "BIx4" / "lake", 31, (8, 8))
    with pytest.raises(ConfigError, match="clip lake has 31 LR frames, expected 32"):
        _udm10(udm10_tree)
    shutil.rmtree(udm10_tree / "BIx4" / "lake")
    _frames(udm10_tree / "BIx4" / "lake", 32, (8, 8))
    _frames(udm10_tree / "GT" / "zebra", 32, (32, 32))
    with pytest.raises(ConfigError, match=r"unexpected clip\(s\) \['zebra'\]"):
        _udm10(udm10_tree)


def test_absent_set_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="udm10: no folder at .*; get it from the PFNL authors' release"):
        _udm10(tmp_path / "nowhere")


def test_run_on_a_public_layout_uses_its_convention(udm10_tree, tmp_path):
    assert main(["run", "dataset=udm10", f"dataset.root={udm10_tree}", f"output_root={tmp_path}",
                 "progress=false", "max_clips=2"]) == 0
    clips = pd.read_parquet(tmp_path / "udm10" / "bicubic" / "clips.parquet")
    assert list(clips["clip"]) == ["archpeople", "archwall"] and (clips["frames"] == 32).all()
    import json

    record = json.loads((tmp_path / "udm10" / "bicubic" / "run.json").read_text())
    assert record["config"]["metrics"]["psnr"]["channel"] == "y"
