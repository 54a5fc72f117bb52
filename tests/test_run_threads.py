"""The run's ``threads`` option: torch uses that many CPU threads, the record says so, values and the
run's identity do not change (a run resumes under another thread count), and a bad value fails in one line."""

from __future__ import annotations

import json

import pandas as pd
import torch

from infvsr_bench.app.cli import main


def _run(folder_dataset_root, out, *extra):
    return main(["run", "method=bicubic", "dataset=folder", f"dataset.root={folder_dataset_root}",
                 "metrics=[psnr]", f"output_root={out}", "progress=false", *extra])


def test_threads_sets_torch_threads_and_keeps_identity(tmp_path, folder_dataset):
    root = folder_dataset(lengths=(6, 5))
    torch.set_num_threads(2)
    assert _run(root, tmp_path / "one", "threads=1", "max_clips=1") == 0
    run_dir = tmp_path / "one" / "folder" / "bicubic"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["environment"]["torch_threads"] == 1
    assert torch.get_num_threads() == 1
    # Another thread count resumes the same run (not refused, the first clip not redone) and scores alike.
    assert _run(root, tmp_path / "one", "threads=2") == 0
    assert _run(root, tmp_path / "two", "threads=2") == 0
    a = pd.read_parquet(run_dir / "frames.parquet").sort_values(["clip", "frame"]).reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "two" / "folder" / "bicubic" / "frames.parquet").sort_values(
        ["clip", "frame"]).reset_index(drop=True)
    assert len(a) == 11
    pd.testing.assert_series_equal(a["psnr"], b["psnr"])


def test_negative_threads_fail_in_one_line(tmp_path, folder_dataset, capsys):
    root = folder_dataset(lengths=(4,))
    assert _run(root, tmp_path, "threads=-1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: threads must be a number of threads >= 0 (0: torch's default); got -1"]
