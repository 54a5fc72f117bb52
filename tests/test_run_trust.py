"""Issue #11, points 4, 5, 7, 8 and 12: resume identity, clip folders, precomputed + max_frames, the method's
own memory, and the typed run record."""

from __future__ import annotations

import gc
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import clips_folder, real_frames, write_clip

from infvsr_bench.app.cli import main
from infvsr_bench.contracts import ClipEntry
from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.results.record import FORMAT_VERSION, RunRecord, read_run_record
from infvsr_bench.results.store import RunStore, clip_folder_name
from infvsr_bench.run.runner import RunOptions, run_all
from methods.classical import Bicubic, ClassicalConfig


def run_cli(*args: str) -> int:
    return main(["run", *args, "progress=false"])


# -- point 4: resume checks code versions and weights, not only the config ---------------------------

def test_resume_refuses_results_of_another_metric_version(tmp_path, monkeypatch, capsys):
    root = clips_folder(tmp_path / "data", {"c0": 6, "c1": 6})
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}", "max_clips=1")
    assert run_cli(*args) == 0
    from infvsr_bench.metrics import pixel

    monkeypatch.setattr(pixel.PSNR, "version", pixel.PSNR.version + "-changed")
    assert run_cli(*args[:-1]) == 2  # the second clip would be scored by other code
    err = capsys.readouterr().err
    assert "metrics.psnr.version" in err and len(err.strip().splitlines()) == 1
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "bicubic" / "clips.parquet")
    assert list(clips["clip"]) == ["c0"]  # nothing mixed in


def test_resume_refuses_another_method_version_or_weights(tmp_path, monkeypatch, capsys):
    root = clips_folder(tmp_path / "data", {"c0": 6})
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}")
    assert run_cli(*args) == 0
    monkeypatch.setattr(Bicubic, "version", "changed")
    assert run_cli(*args) == 2
    assert "method.version" in capsys.readouterr().err
    monkeypatch.undo()
    assert run_cli(*args) == 0  # same code again: resumes (nothing to do)
    monkeypatch.setattr(Bicubic, "weights_sha256", property(lambda self: {"w.safetensors": "f" * 64}))
    assert run_cli(*args) == 2
    assert "method.weights_sha256" in capsys.readouterr().err
    assert run_cli(*args, "overwrite=true") == 0


# -- point 5: clip names map to unique, reversible folders ---------------------------------------------

def test_clip_folder_names_are_unique_and_reversible():
    from urllib.parse import unquote

    names = ["a b", "a_b", "a%20b", "東京", "大阪", ".", "..", ".hidden", "x/y", "X", "x", "a" * 300]
    folders = [clip_folder_name(n) for n in names]
    assert len({f.casefold() for f in folders}) == len(names)  # unique, even on case-insensitive disks
    for name, folder in zip(names, folders):
        assert "/" not in folder and folder not in (".", "..") and not folder.startswith(".")
        assert len(folder.encode()) <= 255
        if len(name) < 50:
            assert unquote(folder.replace("^", "")) == name


def test_colliding_clip_names_are_all_scored_once(tmp_path):
    lengths = {"a b": 5, "a_b": 7, "東京": 6, "大阪": 8}
    root = clips_folder(tmp_path / "data", lengths)
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}")
    assert run_cli(*args) == 0
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    clips = pd.read_parquet(run_dir / "clips.parquet")
    assert dict(zip(clips["clip"], clips["frames"])) == lengths
    frames = pd.read_parquet(run_dir / "frames.parquet")
    assert frames.groupby("clip").size().to_dict() == lengths
    assert run_cli(*args) == 0  # resume: every clip is found finished under its own name
    assert "already finished" in (run_dir / "run.log").read_text()
    assert pd.read_parquet(run_dir / "clips.parquet")["clip"].tolist() == clips["clip"].tolist()


def test_a_folder_holding_another_clip_is_not_taken_as_finished(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write_clip("c", None, {"clip": "c", "status": "ok", "reason": None, "frames": 1})
    folder = store.clips_dir / clip_folder_name("c")
    data = json.loads((folder / "clip.json").read_text())
    (folder / "clip.json").write_text(json.dumps({**data, "clip": "other"}))
    assert not store.is_finished("c")


# -- point 7: precomputed outputs with max_frames ------------------------------------------------------

def test_precomputed_outputs_score_with_max_frames(tmp_path):
    root = clips_folder(tmp_path / "data", {"c0": 10})
    outputs = tmp_path / "outputs"
    write_clip(outputs / "c0.mkv", real_frames(10, seed=0))  # the GT itself as the output
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}", "method=precomputed",
            f"method.root={outputs}", "metrics=[ssim]")
    assert run_cli(*args, "max_frames=4") == 0
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "precomputed" / "clips.parquet")
    assert clips.loc[0, "status"] == "ok" and clips.loc[0, "frames"] == 4 and clips.loc[0, "ssim"] == pytest.approx(1.0)
    write_clip(outputs / "short.mkv", real_frames(3, seed=0))
    assert run_cli(*args, "max_frames=4", "method.pattern=short", "run_name=short") == 1  # 3 stored for 10 LR


# -- point 8: the memory columns measure the method alone ---------------------------------------------

MIB = 2**20


class _Hungry(Bicubic):
    """Holds 64 MiB between calls (its cache) and touches 160 MiB more inside each call."""

    name = "test_hungry"

    def reset(self, clip):
        super().reset(clip)
        self.cache = np.ones(64 * MIB // 8)

    def process(self, lr):
        scratch = np.ones(160 * MIB // 8)
        scratch.sum()
        del scratch
        return super().process(lr)


def _hog_metric() -> Metric:
    import dataclasses

    @dataclasses.dataclass
    class Settings:
        pass

    class Hog(Metric):
        name, version, kind, higher_is_better = "test_hog", "1", MetricKind.NO_REFERENCE, True

        def reset(self) -> None:
            self.state = None

        def update(self, sr, gt, frame_index) -> None:
            if self.state is None:
                self.state = np.ones(256 * MIB // 8)

        def compute(self) -> MetricResult:
            return MetricResult(pd.DataFrame({"frame": []}), {"test_hog": 0.0})

    Hog.Settings = Settings
    return Hog()


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a new interpreter: process-wide RSS is the method's alone only when nothing else in the
    process allocates or frees meanwhile, as in a real ``run``; a long pytest session does (other tests'
    leftovers), which made these tests fail in CI with method peaks of 0.0-0.016 MiB."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def _hungry_run(tmp_path: Path) -> pd.DataFrame:
    root = clips_folder(tmp_path / "data", {"c0": 6, "c1": 6})
    clips = [ClipEntry(n, root / "LR" / f"{n}.mkv", root / "GT" / f"{n}.mkv") for n in ("c0", "c1")]
    method = _Hungry(ClassicalConfig(chunk_size=3))
    store = RunStore(tmp_path / "run")
    run_all(clips, method, [_hog_metric()], store, RunOptions(progress=False))
    return pd.DataFrame([store.clip_row(c.name) for c in clips])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_memory_columns_measure_the_method_alone(tmp_path):
    table = in_fresh_process(_hungry_run, tmp_path)
    assert list(table["status"]) == ["ok", "ok"]
    for _, row in table.iterrows():
        # the 160 MiB scratch of its calls (+ its 64 MiB cache where the allocator shows it as a rise,
        # + bicubic's few MiB); never the metric's 256 MiB
        assert 150 <= row["method_peak_rss_mib"] <= 290, row["method_peak_rss_mib"]
        assert row["process_peak_rss_mib"] >= row["method_peak_rss_mib"] + 256


class _Tidy(_Hungry):
    """Frees memory between clips the way many VSR scripts do (gc.collect()), which also frees others' garbage."""

    name = "test_tidy"

    def reset(self, clip):
        gc.collect()
        super().reset(clip)


def _tidy_run_with_garbage(tmp_path: Path) -> pd.DataFrame:
    root = clips_folder(tmp_path / "data", {"c0": 6})
    clips = [ClipEntry("c0", root / "LR" / "c0.mkv", root / "GT" / "c0.mkv")]
    gc.disable()  # so the garbage below waits for the method's own gc.collect()
    junk: list = [np.ones(300 * MIB // 8)]
    junk.append(junk)
    del junk
    store = RunStore(tmp_path / "run")
    run_all(clips, _Tidy(ClassicalConfig(chunk_size=3)), [], store, RunOptions(progress=False))
    return pd.DataFrame([store.clip_row(c.name) for c in clips])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_garbage_others_left_is_not_taken_off_the_method(tmp_path):
    # Memory that others left in reference cycles, freed inside one of the method's calls, was subtracted
    # from the method's resident memory and its peaks (method peak 0.25 MiB here before the fix).
    table = in_fresh_process(_tidy_run_with_garbage, tmp_path)
    assert list(table["status"]) == ["ok"]
    assert 150 <= table.loc[0, "method_peak_rss_mib"] <= 290, table.loc[0, "method_peak_rss_mib"]


def test_no_automatic_garbage_collection_inside_a_memory_window():
    from infvsr_bench.run.memory import MemoryAccount

    account = MemoryAccount()
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with account:
                assert not gc.isenabled()  # it could free others' garbage inside this component's window
            assert gc.isenabled() == enabled
        finally:
            gc.enable()


# -- point 12: one typed run record, its format version checked on read -------------------------------

def test_run_record_is_typed_and_its_format_checked(folder_dataset, tmp_path):
    root = folder_dataset(lengths=(6,))
    assert run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}") == 0
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    record = read_run_record(run_dir)
    assert record.format_version == FORMAT_VERSION and record.status == "complete"
    assert record.dataset.clips == ["clip0"] and record.identity["method"]["name"] == "bicubic"
    assert RunRecord.from_dict(json.loads((run_dir / "run.json").read_text())) == record
    data = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**data, "format_version": 1}))
    with pytest.raises(ConfigError, match="format_version 1"):
        read_run_record(run_dir)
    del data["dataset"]
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a valid run record"):
        read_run_record(run_dir)


def test_clip_rows_and_tables_carry_the_format_version_and_another_format_is_not_read(folder_dataset, tmp_path,
                                                                                       capsys):
    """#22 point 3: clip.json and the parquet tables are versioned like run.json; a clip row or table of
    another format (format 3 wrote none) is redone or left out with a note, never read as this run's."""
    import pyarrow.parquet as pq

    from infvsr_bench.results.merge import load_runs

    root = folder_dataset(lengths=(6,))
    assert run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}") == 0
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    row_file = run_dir / "clips" / "clip0" / "clip.json"
    assert json.loads(row_file.read_text())["format_version"] == FORMAT_VERSION
    for table in (run_dir / "clips.parquet", run_dir / "frames.parquet", row_file.parent / "frames.parquet"):
        assert json.loads(pq.read_schema(table).metadata[b"infvsr_bench"]) == {"format_version": FORMAT_VERSION}
    assert "format_version" not in pd.read_parquet(run_dir / "clips.parquet")  # the row's values only
    # A table as format 3 wrote it (no version): the report leaves the run out, naming the file.
    clips = pd.read_parquet(run_dir / "clips.parquet")
    clips.to_parquet(run_dir / "clips.parquet")
    merged = load_runs([str(tmp_path / "runs")])
    assert not merged.runs and any(f"{run_dir / 'clips.parquet'}: table format_version None" in n for n in merged.notes)
    # A clip row of format 3 under the same fingerprint: not this run's, so merge lists it and a re-run redoes it.
    row = json.loads(row_file.read_text())
    row.pop("format_version")
    row_file.write_text(json.dumps(row))
    store = RunStore(run_dir)
    summary = store.merge()
    assert summary.missing == ["clip0"] and "written by run format None" in summary.foreign["clip0"]
    assert run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}") == 0
    assert json.loads(row_file.read_text())["format_version"] == FORMAT_VERSION
    # A run folder of format 3: refused for resume in the one line as before.
    data = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**data, "format_version": 3}))
    capsys.readouterr()
    assert run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}") == 2
    assert "holds results of a different run (differs in run record format)" in capsys.readouterr().err
