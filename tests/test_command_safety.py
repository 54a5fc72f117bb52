"""method=command keeps every clip's files in its own folder strictly inside the work folder, and
removes the temporary work folder it made itself.

A clip's folder is the run folder's name for it (``results.clip_folder_name``): ``..`` and ``.`` never
name the work folder's parent or itself, and ``a b`` / ``a_b`` never share a folder (two shards
sharing one work folder scored one clip on the other's frames). The stand-in tool copies its LR
frames as the SR output (scale 1), so each clip's output must be exactly its own LR frames.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import downscale, real_frames, write_clip
from test_external_tools import lr_clip, run

from infvsr_bench.app.cli import main
from infvsr_bench.errors import ClipError
from infvsr_bench.results.store import clip_folder_name
from methods import ClipInfo, build_method

NAMES = ("..", ".", "a b", "a_b", "Clip")


@pytest.fixture
def copy_tool(tmp_path: Path) -> str:
    """The stand-in tool's command: the LR frame folder copied as the output (scale 1)."""
    tool = tmp_path / "copy_tool.py"
    tool.write_text("import shutil, sys\nshutil.copytree(sys.argv[1], sys.argv[2] + '/sr')\n")
    return f"{{python}} {tool} {{lr_dir}} {{out_dir}}"


@pytest.fixture
def x4_tool(tmp_path: Path) -> str:
    """The stand-in tool's command for CLI runs: each LR frame resized x4 (PIL bicubic)."""
    tool = tmp_path / "x4_tool.py"
    tool.write_text("import sys\nfrom pathlib import Path\nfrom PIL import Image\n"
                    "for f in sorted(Path(sys.argv[1]).glob('*.png')):\n"
                    "    im = Image.open(f)\n"
                    "    im.resize((im.width * 4, im.height * 4)).save(Path(sys.argv[2]) / f.name)\n")
    return f"method.command='{{python}} {tool} {{lr_dir}} {{out_dir}}'"


def _sentinels(folder: Path) -> dict[str, str]:
    """``input/`` and ``output/`` folders holding a user's file, as a tool's siblings of work_dir."""
    for sub in ("input", "output"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / "mine.txt").write_text(f"my {sub} file\n")
    return _user_files(folder)


def _user_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("mine.txt"))}


@pytest.mark.parametrize("name", NAMES)
def test_each_clip_folder_is_its_run_folder_name_strictly_inside_work_dir(name, tmp_path, copy_tool):
    before = _sentinels(tmp_path)
    work = tmp_path / "work"
    method = build_method({"name": "command", "command": copy_tool, "scale": 1, "work_dir": str(work)})
    lr = lr_clip(3, 16, 24)
    np.testing.assert_array_equal(run(method, lr, name), lr)
    assert _user_files(tmp_path) == before
    folder = work / clip_folder_name(name)
    assert [p.name for p in work.iterdir()] == [folder.name]
    assert method.clip_record()["tool_log"] == str(folder / "tool.log") and (folder / "tool.log").is_file()


def test_dot_dot_clip_without_work_dir_leaves_the_temp_folder_alone(tmp_path, copy_tool, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = _sentinels(tmp_path)
    method = build_method({"name": "command", "command": copy_tool, "scale": 1})
    lr = lr_clip(3, 16, 24)
    np.testing.assert_array_equal(run(method, lr, ".."), lr)
    assert _user_files(tmp_path) == before


def test_two_shards_sharing_a_work_dir_keep_a_b_and_a_underscore_b_apart(tmp_path, copy_tool):
    options = {"name": "command", "command": copy_tool, "scale": 1, "work_dir": str(tmp_path / "work")}
    shard0, shard1 = build_method(options), build_method(options)
    lr0, lr1 = lr_clip(4, 16, 24, seed=0), lr_clip(4, 16, 24, seed=1)
    # Interleaved as two workers run them: both clips' frames are on disk before either tool runs.
    for method, name, lr in ((shard0, "a b", lr0), (shard1, "a_b", lr1)):
        method.reset(ClipInfo(name, len(lr), 16, 24, 25.0))
        method.process(lr)
    out0, out1 = (np.concatenate(list(m.flush_chunks())) for m in (shard0, shard1))
    np.testing.assert_array_equal(out0, lr0)
    np.testing.assert_array_equal(out1, lr1)


def test_a_clip_folder_resolving_outside_work_dir_fails_the_clip_and_touches_nothing(tmp_path, copy_tool):
    outside = tmp_path / "elsewhere"
    before = _sentinels(outside)
    work = tmp_path / "work"
    work.mkdir()
    (work / clip_folder_name("a_b")).symlink_to(outside, target_is_directory=True)
    method = build_method({"name": "command", "command": copy_tool, "scale": 1, "work_dir": str(work)})
    with pytest.raises(ClipError, match=r"clip 'a_b': its work folder .*a_b resolves to .*elsewhere, outside "):
        run(method, lr_clip(2, 16, 24), "a_b")
    assert _user_files(outside) == before


def test_cli_run_of_a_dot_dot_clip_scores_it_and_keeps_the_work_dirs_siblings(tmp_path, x4_tool):
    root = tmp_path / "data"  # the video ``...mkv`` (clip ``..``) and the same frames as ``plain.mkv``
    gt = real_frames(5, (64, 96))
    for name in ("...mkv", "plain.mkv"):
        write_clip(root / "GT" / name, gt)
        write_clip(root / "LR" / name, downscale(gt))
    before = _sentinels(tmp_path / "tool")
    work = tmp_path / "tool" / "work"
    code = main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}", "method=command",
                 x4_tool, f"method.work_dir={work}", "progress=false"])
    assert code == 0
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "command" / "clips.parquet").set_index("clip")
    assert clips["status"].to_dict() == {"..": "ok", "plain": "ok"}
    assert clips.loc["..", "psnr"] == clips.loc["plain", "psnr"]  # scored on its own frames
    assert _user_files(tmp_path / "tool") == before
    assert (work / clip_folder_name("..") / "tool.log").is_file()


# -- the temporary work folder (point 15) -------------------------------------------------------------


def test_cli_run_without_work_dir_removes_its_temp_folder_and_keeps_none(folder_dataset, tmp_path, x4_tool,
                                                                         monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "infvsr_command_not_ours").mkdir()  # another run's folder: never touched
    root = folder_dataset(lengths=(3, 4), size=(32, 48))
    common = ["run", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}", "method=command",
              x4_tool, "progress=false"]
    assert main([*common, "run_name=temp"]) == 0
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["infvsr_command_not_ours"]
    # A work_dir the user asked for keeps each clip's log (and only that).
    assert main([*common, "run_name=kept", f"method.work_dir={tmp_path / 'work'}"]) == 0
    assert sorted(p.relative_to(tmp_path / "work").as_posix() for p in (tmp_path / "work").rglob("*")) == [
        "clip0", "clip0/tool.log", "clip0/tool_stats.json", "clip1", "clip1/tool.log", "clip1/tool_stats.json"]


def test_closing_the_method_mid_clip_removes_its_temp_folder(tmp_path, copy_tool, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    method = build_method({"name": "command", "command": copy_tool, "scale": 1})
    method.reset(ClipInfo("a", 2, 16, 24, 25.0))
    method.process(lr_clip(2, 16, 24))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("infvsr_command_")]
    method.close()
    assert list(tmp_path.iterdir()) == [tmp_path / "copy_tool.py"]


def test_without_work_dir_a_failure_says_how_to_keep_the_log_it_will_not_find(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    method = build_method({"name": "command", "command": "echo tool failed; exit 3", "scale": 1})
    with pytest.raises(ClipError) as err:
        run(method, lr_clip(2, 16, 24), "a")
    assert str(err.value) == "clip 'a': command exited with code 3; set method.work_dir=<folder> to keep the tool's log"
    assert method.clip_record()["tool_log"] is None
    method.close()
    assert list(tmp_path.iterdir()) == []
