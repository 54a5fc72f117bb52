"""The builder never deletes what it did not create: a root is replaced only when empty or our own build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import real_frames, write_clip
from omegaconf import OmegaConf

from infvsr_bench.app.cli import compose, main
from infvsr_bench.errors import ConfigError
from vsr_datasets.benchmark import load_dataset
from vsr_datasets.builder import verify_benchmark


def _user_folder(folder: Path) -> dict[str, bytes]:
    """A user's folder holding one real video and a notes file; returns every file's bytes."""
    write_clip(folder / "holiday.mkv", real_frames(14, (64, 96)))
    (folder / "notes.txt").write_text("my own file\n")
    return _snapshot(folder)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _longform(data_root: Path, root: Path, sources: Path) -> dict:
    """The shipped longform recipe over ``sources`` (short clips), stored at ``root``."""
    cfg = OmegaConf.to_container(compose(["dataset=longform", f"data_root={data_root}"]).dataset, resolve=True)
    cfg["root"] = str(root)
    cfg["clips_from"].update(folder=str(sources), frames=12, size=[48, 64], min_clips=1)
    return cfg


def _tiny(root: Path, seed: int = 0, name: str = "tiny") -> dict:
    """A one-clip generated benchmark (6 frames at 48x64) stored at ``root``."""
    source = {"type": "animated_photos", "photos": ["astronaut"], "frames": 6, "size": [48, 64], "shot_frames": [3, 4]}
    return {"name": name, "kind": "generated", "root": str(root), "seed": seed,
            "clips": [{"name": "a", "source": source}]}


@pytest.mark.parametrize("where", ["is", "inside", "contains"])
def test_root_overlapping_the_source_folder_is_refused_and_the_sources_kept(tmp_path, where):
    sources = tmp_path / "data" / "hr"
    before = _user_folder(sources)
    root = {"is": sources, "inside": sources / "bench", "contains": tmp_path / "data"}[where]
    with pytest.raises(ConfigError, match=r"overlaps the source .*hr \(is, contains or is inside it\)") as err:
        load_dataset(_longform(tmp_path, root, sources))
    assert "\n" not in str(err.value)
    assert _snapshot(sources) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["hr"]


def test_cli_build_into_the_source_folder_is_one_line_exit_2(tmp_path, capsys):
    before = _user_folder(tmp_path / "videos")
    code = main(["build", "dataset=longform", f"dataset.root={tmp_path / 'videos'}",
                 f"dataset.clips_from.folder={tmp_path / 'videos'}", "dataset.clips_from.min_clips=1",
                 "dataset.clips_from.frames=12", "dataset.clips_from.size=[48,64]"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: dataset root ") and err.count("\n") == 1 and "overlaps the source" in err
    assert _snapshot(tmp_path / "videos") == before


def test_non_empty_root_without_our_manifest_is_refused_and_kept(tmp_path):
    root = tmp_path / "mine"
    before = _user_folder(root)
    with pytest.raises(ConfigError, match=r"is not empty and holds no 'tiny' benchmark built by infvsr-bench; "
                                          r"choose another dataset.root, or remove that folder yourself"):
        load_dataset(_tiny(root))
    assert _snapshot(root) == before
    # A manifest-looking file that is not ours (no manifest_version / recipe_sha256) is not enough.
    (root / "manifest.json").write_text(json.dumps({"name": "tiny", "clips": []}))
    with pytest.raises(ConfigError, match="holds no 'tiny' benchmark"):
        load_dataset(_tiny(root))
    assert (root / "notes.txt").read_text() == "my own file\n"


def test_our_build_of_another_dataset_is_not_replaced(tmp_path):
    root = tmp_path / "bench"
    load_dataset(_tiny(root, name="other"))
    before = _snapshot(root)
    with pytest.raises(ConfigError, match="holds no 'tiny' benchmark"):
        load_dataset(_tiny(root))
    assert _snapshot(root) == before


def test_a_file_as_root_is_refused(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        load_dataset(_tiny(tmp_path / "x"))
    assert (tmp_path / "x").read_text() == "keep"


def test_empty_folder_and_an_older_build_of_ours_are_replaced(tmp_path):
    root = tmp_path / "bench"
    root.mkdir()
    load_dataset(_tiny(root, seed=0))
    old = json.loads((root / "manifest.json").read_text())["recipe_sha256"]
    load_dataset(_tiny(root, seed=1))  # a different recipe: the old build is ours, so it is replaced
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["recipe_sha256"] != old and manifest["recipe"]["seed"] == 1
    assert verify_benchmark(root) == []
    assert [p.name for p in tmp_path.iterdir()] == ["bench"]  # no temp or set-aside folder left behind


def test_symlinked_root_replaces_the_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "disk" / "bench", tmp_path / "link"
    load_dataset(_tiny(target, seed=0))
    link.symlink_to(target, target_is_directory=True)
    load_dataset(_tiny(link, seed=1))
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert json.loads((target / "manifest.json").read_text())["recipe"]["seed"] == 1
    assert verify_benchmark(link) == []
    assert [p.name for p in (tmp_path / "disk").iterdir()] == ["bench"]
