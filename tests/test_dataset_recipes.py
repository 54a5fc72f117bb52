"""Every shipped generated recipe builds completely; `longform` (a folder of the user's HR videos) and
`movielq_like` (no-reference scoring) in detail."""

from __future__ import annotations

import json

import pytest
from conftest import real_frames, write_clip
from omegaconf import OmegaConf

from infvsr_bench.app.cli import compose, conf_dir
from infvsr_bench.errors import ConfigError
from infvsr_bench.io.readers import open_video
from vsr_datasets.benchmark import load_dataset
from vsr_datasets.builder import verify_benchmark

GENERATED = sorted(p.stem for p in (conf_dir() / "dataset").glob("*.yaml")
                   if OmegaConf.load(p).get("kind", "generated") == "generated")


def _config(name: str, data_root, **changes) -> dict:
    cfg = OmegaConf.to_container(compose([f"dataset={name}", f"data_root={data_root}"]).dataset, resolve=True)
    cfg.update(changes)
    return cfg


def test_longform_builds_one_clip_per_user_video(tmp_path):
    sources = tmp_path / "hr"
    for i in range(8):
        write_clip(sources / f"video{i}.mkv", real_frames(14, (64, 96), seed=i))
    cfg = _config("longform", tmp_path, clips_from={"folder": str(sources), "frames": 12, "size": [48, 64],
                                                    "start": 1, "min_clips": 8})
    ds = load_dataset(cfg)
    assert [c.name for c in ds.clips] == [f"video{i}" for i in range(8)]
    manifest = json.loads((ds.root / "manifest.json").read_text())
    entry = manifest["clips"][0]
    assert entry["frames"] == 12 and entry["hr_size"] == [48, 64] and entry["lr_size"] == [12, 16]
    assert len(entry["source_sha256"]) == 64 and entry["source"]["start"] == 1
    # Same sources -> no rebuild; a changed source -> rebuild.
    mtime = (ds.root / "manifest.json").stat().st_mtime_ns
    load_dataset(cfg)
    assert (ds.root / "manifest.json").stat().st_mtime_ns == mtime


def test_longform_refuses_too_few_small_or_short_sources(tmp_path):
    sources = tmp_path / "hr"
    for i in range(7):
        write_clip(sources / f"video{i}.mkv", real_frames(14, (64, 96), seed=i))
    opts = {"folder": str(sources), "frames": 12, "size": [48, 64], "start": 0, "min_clips": 8}
    with pytest.raises(ConfigError, match="holds 7 videos; this benchmark needs at least 8"):
        load_dataset(_config("longform", tmp_path, clips_from=opts))
    with pytest.raises(ConfigError, match="larger than the video's 64x96; sources are never upscaled"):
        load_dataset(_config("longform", tmp_path, clips_from={**opts, "min_clips": 1, "size": [72, 96]}))
    with pytest.raises(ConfigError, match="30 frames requested from frame 0 but only 14 remain"):
        load_dataset(_config("longform", tmp_path, clips_from={**opts, "min_clips": 1, "frames": 30}))
    with pytest.raises(ConfigError, match="set dataset.clips_from.folder"):
        load_dataset(_config("longform", tmp_path, clips_from={**opts, "folder": ""}))


def test_movielq_like_is_realistic_and_scored_without_gt(tmp_path):
    cfg = _config("movielq_like", tmp_path)
    assert len(cfg["clips"]) == 10 and all(c["source"]["frames"] == 1000 for c in cfg["clips"])
    cfg["clips"] = cfg["clips"][:1]
    cfg["clips"][0]["source"].update(frames=20, shot_frames=[8, 12])
    ds = load_dataset(cfg)
    assert all(c.gt is None for c in ds.clips)
    entry = json.loads((ds.root / "manifest.json").read_text())["clips"][0]
    assert entry["degradation"]["type"] == "realistic" and entry["degradation"]["crf"] == 28
    assert (ds.root / entry["gt"]["path"]).exists()  # built and kept, just not scored


def _frames(path) -> tuple[int, tuple[int, int]]:
    """Decoded frame count and (H, W) of a stored video, counted frame by frame."""
    shapes = [f.shape for f in open_video(path).iter_frames()]
    assert len(set(shapes)) == 1 and shapes[0][2] == 3, path
    return len(shapes), shapes[0][:2]


def test_generated_recipes_are_discovered():
    assert {"longform_mini", "longform", "movielq_like"} <= set(GENERATED)


@pytest.mark.parametrize("name", GENERATED)
def test_every_generated_recipe_builds_every_clip(name, tmp_path):
    """Each shipped recipe, every clip, source and degradation, shortened to 8 frames (cuts kept inside)."""
    frames = 8
    cfg = _config(name, tmp_path / "data")
    expected: dict[str, list[int] | None] = {}
    if cfg.get("clips_from"):
        sources = tmp_path / "hr"
        for i in range(cfg["clips_from"]["min_clips"]):
            write_clip(sources / f"video{i}.mkv", real_frames(frames + 2, (64, 96), seed=i))
        cfg["clips_from"].update(folder=str(sources), frames=frames, size=[48, 64])
        expected.update((f"video{i}", [48, 64]) for i in range(cfg["clips_from"]["min_clips"]))
    for clip in cfg["clips"]:
        clip["source"]["frames"] = frames
        if "shot_frames" in clip["source"]:
            clip["source"]["shot_frames"] = [frames // 3, frames // 2]
        expected[clip["name"]] = clip["source"].get("size")
    ds = load_dataset(cfg)
    assert sorted(c.name for c in ds.clips) == sorted(expected)
    manifest = json.loads((ds.root / "manifest.json").read_text())
    scale = cfg["scale"]
    for entry in manifest["clips"]:
        n_gt, gt_size = _frames(ds.root / entry["gt"]["path"])
        n_lr, lr_size = _frames(ds.root / entry["lr"]["path"])
        assert n_gt == n_lr == frames, entry["name"]
        assert list(gt_size) == (expected[entry["name"]] or list(gt_size)), entry["name"]
        assert list(lr_size) == [gt_size[0] // scale, gt_size[1] // scale], entry["name"]
    assert verify_benchmark(ds.root) == []
