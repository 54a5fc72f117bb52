"""Issue #20, points 6, 7, 10, 13 and 14: what data a run scored is part of its identity; clip
listings refuse ambiguity and skip hidden files; broken manifests and odd frames are one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import downscale, real_frames, write_clip
from PIL import Image

from infvsr_bench.app.cli import main
from infvsr_bench.errors import ConfigError
from infvsr_bench.results.merge import load_runs
from infvsr_bench.results.record import read_run_record
from vsr_datasets.benchmark import load_dataset
from vsr_datasets.builder import recipe_sha256, verify_benchmark

SIZE = (32, 48)


def _data(root, lengths=(6, 8), lr_dirs=("LR",), seed=0):
    """A folder dataset: GT/clip<i>.mkv and, per LR folder, a different degradation of it."""
    for i, n in enumerate(lengths):
        gt = real_frames(n, SIZE, seed=seed + i)
        write_clip(root / "GT" / f"clip{i}.mkv", gt)
        for k, lr_dir in enumerate(lr_dirs):  # the second LR folder is noisier: other data, other scores
            noise = np.random.default_rng(k).integers(-12 * k, 12 * k + 1, (n, SIZE[0] // 4, SIZE[1] // 4, 3))
            write_clip(root / lr_dir / f"clip{i}.mkv", np.clip(downscale(gt) + noise, 0, 255).astype(np.uint8))
    return root


def _run(root, out, *extra):
    return main(["run", "dataset=folder", f"dataset.root={root}", f"output_root={out}", "metrics=[psnr]",
                 "progress=false", *extra])


def _psnr(run_dir):
    return pd.read_parquet(run_dir / "clips.parquet").set_index("clip")["psnr"].to_dict()


def _folder(root, **kw):
    return load_dataset({"name": "folder", "kind": "folder", "root": str(root), **kw})


# Point 6: runs on different data never share a ranking.

def test_folder_runs_on_other_lr_folders_are_other_datasets(tmp_path):
    root = _data(tmp_path / "data", lr_dirs=("LR", "LR_noisy"))
    bd, bi = _folder(root), _folder(root, lr_dir="LR_noisy")
    assert bd.record["content_digest"] != bi.record["content_digest"]
    assert (bd.record["lr_dir"], bi.record["lr_dir"]) == ("LR", "LR_noisy")
    assert _folder(root).record["content_digest"] == bd.record["content_digest"]  # same data, same digest

    runs = tmp_path / "runs"
    assert _run(root, runs, "run_name=clean") == 0
    assert _run(root, runs, "dataset.lr_dir=LR_noisy", "run_name=noisy") == 0
    clean, noisy = runs / "folder" / "clean", runs / "folder" / "noisy"
    assert read_run_record(noisy).dataset.content_digest == bi.record["content_digest"]
    merged = load_runs([str(runs)])
    columns = {run.path.name: run.dataset for run in merged.runs}
    assert columns == {"clean": f"folder@{bd.record['content_digest'][:8]}",
                       "noisy": f"folder@{bi.record['content_digest'][:8]}"}
    assert any("2 different data" in n for n in merged.notes), merged.notes
    assert _psnr(clean) != _psnr(noisy)


def test_public_set_degradations_are_other_data(tmp_path):
    root = tmp_path / "UDM10"
    for clip in ("archpeople", "archwall", "auditorium", "band", "caffe", "camera", "clap", "lake", "photography",
                 "polyflow"):
        for side, size in (("GT", (16, 16)), ("BIx4", (4, 4)), ("BDx4", (4, 4))):
            (root / side / clip).mkdir(parents=True)
            for i in range(32):
                Image.fromarray(np.full((*size, 3), i, np.uint8)).save(root / side / clip / f"{i:04d}.png")

    def digest(degradation):
        return load_dataset({"name": "udm10", "kind": "public", "set": "udm10", "root": str(root),
                             "degradation": degradation}).record["content_digest"]

    assert digest("BIx4") != digest("BDx4") and digest("BIx4") == digest("BIx4")


# Point 7: changed data is never resumed into old results.

def test_changed_gt_is_refused_then_overwrite_scores_it_afresh(tmp_path, capsys):
    root = _data(tmp_path / "data", lengths=(6,))
    runs = tmp_path / "runs"
    run_dir = runs / "folder" / "bicubic"
    assert _run(root, runs) == 0
    before = _psnr(run_dir)["clip0"]

    gt = real_frames(6, SIZE, seed=0)
    write_clip(root / "GT" / "clip0.mkv", 255 - gt)  # the GT replaced by its negative
    capsys.readouterr()
    assert _run(root, runs) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "differs in dataset.content_digest" in err, err
    assert _psnr(run_dir)["clip0"] == before  # the old results are kept untouched

    assert _run(root, runs, "overwrite=true") == 0
    assert _run(root, tmp_path / "fresh") == 0
    after, fresh = _psnr(run_dir)["clip0"], _psnr(tmp_path / "fresh" / "folder" / "bicubic")["clip0"]
    assert after == fresh and after < before - 10


def test_changed_precomputed_outputs_are_refused_then_overwrite_scores_them(tmp_path, capsys):
    root = _data(tmp_path / "data", lengths=(6,))
    gt = real_frames(6, SIZE, seed=0)
    outputs = tmp_path / "outputs"
    write_clip(outputs / "clip0.mkv", gt)  # a perfect method's output
    args = ("method=precomputed", f"method.root={outputs}")
    runs = tmp_path / "runs"
    run_dir = runs / "folder" / "precomputed"
    assert _run(root, runs, *args) == 0
    assert np.isinf(_psnr(run_dir)["clip0"]) or _psnr(run_dir)["clip0"] > 60

    write_clip(outputs / "clip0.mkv", np.roll(gt, 3, axis=2))  # the tool re-ran: other outputs
    capsys.readouterr()
    assert _run(root, runs, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "differs in method.weights_sha256.outputs" in err, err

    assert _run(root, runs, *args, "overwrite=true") == 0
    assert _run(root, tmp_path / "fresh", *args) == 0
    after, fresh = _psnr(run_dir)["clip0"], _psnr(tmp_path / "fresh" / "folder" / "precomputed")["clip0"]
    assert after == fresh and after < 40


# Point 10 and 14: clip listings.

def test_a_clip_folder_beside_a_clip_video_of_its_name_is_refused(tmp_path):
    root = _data(tmp_path / "data", lengths=(6,))
    (root / "LR" / "clip0").mkdir()
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(root / "LR" / "clip0" / "0000.png")
    with pytest.raises(ConfigError, match=r"LR/clip0 and .*LR/clip0\.mkv are both clip 'clip0'"):
        _folder(root)


def test_a_public_clip_folder_beside_a_clip_video_of_its_name_is_refused(tmp_path):
    root = tmp_path / "UDM10"
    (root / "BIx4" / "lake").mkdir(parents=True)
    (root / "GT").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "BIx4" / "lake" / "0000.png")
    write_clip(root / "BIx4" / "lake.mkv", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"BIx4/lake and .*BIx4/lake\.mkv are both clip 'lake'"):
        load_dataset({"name": "udm10", "kind": "public", "set": "udm10", "root": str(root), "degradation": "BIx4"})


def test_hidden_files_are_not_clips_and_an_odd_frame_is_named(tmp_path):
    root = tmp_path / "data"
    gt = real_frames(7, SIZE)
    for side, frames in (("GT", gt), ("LR", downscale(gt))):
        for name in ("ok", "odd", "extra"):
            (root / side / name).mkdir(parents=True)
            for i, f in enumerate(frames[:6] if (side, name) != ("GT", "extra") else frames):
                Image.fromarray(f).save(root / side / name / f"{i:05d}.png")
    (root / "LR" / "ok" / "._00000.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "LR" / "._ok.mkv").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "LR" / ".DS_Store").write_bytes(b"\x00")
    Image.fromarray(gt[0]).save(root / "GT" / "odd" / "preview.jpg")
    assert [c.name for c in _folder(root).clips] == ["extra", "odd", "ok"]

    assert _run(root, tmp_path / "runs") == 1  # the odd clips fail alone
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "bicubic" / "clips.parquet").set_index("clip")
    assert clips.loc["ok", "status"] == "ok" and clips.loc["ok", "frames"] == 6
    assert "GT/odd/preview.jpg: preview.jpg does not follow the numbering of the other 6 frames" \
        in clips.loc["odd", "reason"]
    assert clips.loc["extra", "reason"] == (f"GT has 7 frames but LR has 6 ({root / 'GT' / 'extra' / '00006.png'} "
                                            "has no frame of its number on the other side)")


# Point 13: broken manifests are one line naming the file.

@pytest.mark.parametrize("content", ["{}", "[]", '{"clips": [{"name": "a"}]}', '{"clips": 3}'])
def test_verify_names_a_manifest_that_is_not_one(tmp_path, content, capsys):
    (tmp_path / "manifest.json").write_text(content)
    problems = verify_benchmark(tmp_path)
    assert len(problems) == 1 and str(tmp_path / "manifest.json") in problems[0], problems
    assert main(["verify", str(tmp_path)]) == 1
    assert str(tmp_path / "manifest.json") in capsys.readouterr().err


@pytest.mark.parametrize("content", ['{"clips": 3}', '{"clips": [{"name": "a"}]}', "[]"])
def test_loading_a_generated_benchmark_with_a_broken_manifest_is_one_line(tmp_path, content):
    recipe = {"name": "toy", "root": str(tmp_path), "clips": [{"name": "a", "source": {"type": "x"}}]}
    full = {"kind": "generated", "version": 1, "scale": 4, "seed": 0, "storage": "ffv1",
            "degradation": {"type": "bicubic"}, **recipe}
    manifest = json.loads(content)
    if isinstance(manifest, dict):
        manifest.update(manifest_version=1, name="toy", recipe_sha256=recipe_sha256(full))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_dataset(recipe)
