"""End to end: the CLI writes per-frame / per-clip / per-run results; bad input fails one clip at a time."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, downscale, real_frames, write_clip
from skimage import color
from skimage.metrics import peak_signal_noise_ratio

from infvsr_bench.app.cli import main
from methods import METHODS
from methods.classical import Bicubic


class _NaNMethod(Bicubic):
    name = "test_nan"

    def process(self, lr):
        out = super().process(lr).astype(np.float32) / 255
        out[0, 0, 0, 0] = np.nan
        return out


class _BadShapeMethod(Bicubic):
    name = "test_bad_shape"

    def process(self, lr):
        return super().process(lr)[:, :-1]


class _DropsFramesMethod(Bicubic):
    name = "test_drops_frames"

    def process(self, lr):
        return super().process(lr)[:-1]


for _cls in (_NaNMethod, _BadShapeMethod, _DropsFramesMethod):
    if _cls.name not in METHODS:
        METHODS.register(_cls.name, _cls)


def run_cli(*args: str) -> int:
    return main(["run", *args, "progress=false"])


def cli_subprocess(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infvsr_bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _y(img):
    return color.rgb2ycbcr(img)[..., 0]


def test_run_writes_frames_clips_and_run_record(folder_dataset, tmp_path):
    root = folder_dataset()
    assert run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}") == 0
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    frames = pd.read_parquet(run_dir / "frames.parquet")
    clips = pd.read_parquet(run_dir / "clips.parquet")
    assert len(frames) == 24 + 30 + 20 and (clips["status"] == "ok").all()
    assert pd.read_csv(run_dir / "frames.csv").shape == frames.shape

    # Independent reference: torch bicubic + scikit-image PSNR on BT.601 Y for clip1.
    gt = real_frames(30, seed=1)
    x = torch.from_numpy(downscale(gt)).permute(0, 3, 1, 2).float() / 255
    sr = F.interpolate(x, scale_factor=4, mode="bicubic", antialias=True, align_corners=False)
    sr = (sr.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    ref = [peak_signal_noise_ratio(_y(g), _y(s), data_range=255) for g, s in zip(gt, sr)]
    got = frames[frames["clip"] == "clip1"].sort_values("frame")["psnr"].to_numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert clips.set_index("clip").loc["clip1", "psnr"] == pytest.approx(np.mean(ref), abs=1e-6)

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["clips_ok"] == 3
    assert record["method"]["name"] == "bicubic" and record["method"]["parameters"] == 0
    assert {m["column"] for m in record["metrics"]} == {"psnr", "ssim"}
    assert all(m["version"] and m["settings"]["channel"] == "y" for m in record["metrics"])
    env = record["environment"]
    assert env["packages"]["torch"] and "commit" in env["git"] and env["cpu_count"]
    assert record["config"]["seed"] == 0 and record["timings"]["process_peak_rss_mib"] > 0
    assert {"method_seconds", "method_fps", "method_peak_rss_mib", "process_peak_rss_mib"} <= set(clips.columns)


def test_rerun_skips_finished_clips_and_refuses_a_different_config(folder_dataset, tmp_path, capsys):
    root = folder_dataset(lengths=(12, 12))
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path}")
    assert run_cli(*args) == 0
    marker = tmp_path / "folder" / "bicubic" / "clips" / "clip0" / "clip.json"
    before = marker.stat().st_mtime_ns
    assert run_cli(*args) == 0
    assert marker.stat().st_mtime_ns == before
    assert run_cli(*args, "method.chunk_size=5") == 2
    assert "holds results of a different run (differs in config.method.chunk_size)" in capsys.readouterr().err
    assert marker.stat().st_mtime_ns == before
    assert run_cli(*args, "method.chunk_size=5", "overwrite=true") == 0
    assert marker.stat().st_mtime_ns != before


def test_bad_clips_fail_alone_and_earlier_results_survive(tmp_path):
    root = tmp_path / "data"
    gt0 = real_frames(16, seed=0)
    write_clip(root / "GT" / "a_good.mkv", gt0)
    write_clip(root / "LR" / "a_good.mkv", downscale(gt0))
    gt1 = real_frames(16, seed=1)  # GT one frame short
    write_clip(root / "GT" / "b_short.mkv", gt1[:15])
    write_clip(root / "LR" / "b_short.mkv", downscale(gt1))
    gt2 = real_frames(16, size=(64, 100), seed=2)  # GT 100 wide, LR 24 wide: not x4
    write_clip(root / "GT" / "c_size.mkv", gt2)
    write_clip(root / "LR" / "c_size.mkv", downscale(gt2[:, :, :96]))
    (root / "LR" / "d_corrupt.mp4").write_bytes(b"garbage" * 100)
    write_clip(root / "LR" / "e_nogt.mkv", downscale(gt0))
    args = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}")

    assert run_cli(*args) == 1  # some clips failed
    run_dir = tmp_path / "runs" / "folder" / "bicubic"
    clips = pd.read_parquet(run_dir / "clips.parquet").set_index("clip")
    assert clips.loc["a_good", "status"] == "ok"
    assert clips.loc["b_short", "reason"] == "GT has 15 frames but LR has 16"
    assert "GT is 100x64 but LR 24x16 x4 is 96x64" == clips.loc["c_size", "reason"]
    assert "d_corrupt.mp4: unreadable video" in clips.loc["d_corrupt", "reason"]
    assert "no GT for this clip" in clips.loc["e_nogt", "reason"]
    frames = pd.read_parquet(run_dir / "frames.parquet")
    assert set(frames["clip"]) == {"a_good"} and len(frames) == 16
    good = (run_dir / "clips" / "a_good" / "frames.parquet").read_bytes()

    # Fix one clip: that is other data (issue #20 point 7), so the folder is refused and the earlier
    # results stay untouched; overwrite=true scores the fixed data afresh and the fixed clip succeeds.
    write_clip(root / "GT" / "b_short.mkv", gt1)
    assert run_cli(*args) == 2
    assert (run_dir / "clips" / "a_good" / "frames.parquet").read_bytes() == good
    assert run_cli(*args, "overwrite=true") == 1
    clips = pd.read_parquet(run_dir / "clips.parquet").set_index("clip")
    assert clips.loc["b_short", "status"] == "ok" and clips.loc["a_good", "status"] == "ok"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete_with_failures" and record["clips_failed"] == 3


@pytest.mark.parametrize(
    "method,reason",
    [
        ("test_nan", "method output contains NaN or Inf"),
        ("test_bad_shape", "method output has shape (8, 63, 96, 3), expected (T, 64, 96, 3)"),
        ("test_drops_frames", "method returned 14 frames for 16 input frames"),
    ],
)
def test_bad_method_output_fails_the_clip_with_a_reason(folder_dataset, tmp_path, method, reason):
    root = folder_dataset(lengths=(16,))
    code = run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path}",
                   f"method.name={method}", "method.chunk_size=8")
    assert code == 1
    clips = pd.read_parquet(tmp_path / "folder" / method / "clips.parquet")
    assert clips.loc[0, "status"] == "failed" and clips.loc[0, "reason"] == reason


@pytest.mark.parametrize(
    "args,message",
    [
        (["method=bicubc"], "error: unknown method 'bicubc'; did you mean 'bicubic'?"),
        (["metrics=[psnr,ssmi]"], "error: unknown metric 'ssmi'; did you mean 'ssim'"),
        (["dataset=longfrom_mini"], "error: unknown dataset 'longfrom_mini'; did you mean 'longform_mini' or 'longform'?"),
        (["max_frame=3"], "error: unknown option 'max_frame'; did you mean 'max_frames'?"),
        (["method.scal=2"], "error: unknown option method.scal for method 'bicubic'; did you mean 'scale'?"),
        (["method=infvsr", "method.compile_vae_norm=true"],
         "error: unknown option method.compile_vae_norm for method 'infvsr'; did you mean 'compile_vae_norms'"),
        (["dataset=longform", "dataset.clip_from.folder=/x"],
         "error: unknown option dataset.clip_from for dataset 'longform'; did you mean 'clips_from'"),
        (["metrics.psnr.crop_bordr=4"], "error: unknown option metrics.psnr.crop_bordr; did you mean 'crop_border'?"),
        (["metrics.tof.scale=1"], "error: metrics.tof.scale: metric 'tof' is not in this run's metrics ['psnr', 'ssim']"),
        (["runn"], None),
    ],
)
def test_unknown_names_give_one_line(args, message):
    proc = cli_subprocess(*(["run"] if args != ["runn"] else []), *args, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(message or "error: unknown command 'runn'; did you mean 'run'?")


def test_train_calls_the_trainer_registered_for_the_recipes_architecture(tmp_path, monkeypatch, capsys):
    """The CLI names no method: `train smoke` finds infvsr-tiny through the recipe's base (infvsr_tiny.yaml)
    and calls what methods.trainers registers for it; an override of the architecture picks another."""
    from infvsr_bench.app.cli import conf_dir
    from methods.trainers import TRAINERS

    calls = []

    def trainer(folder, name, overrides):
        calls.append((folder, name, overrides))
        return tmp_path / name

    monkeypatch.setattr(TRAINERS, "_entries", {"infvsr-tiny": trainer, "other": trainer})
    assert main(["train", "smoke", "seed=3"]) == 0
    assert main(["train", "infvsr_tiny", "architecture=other"]) == 0
    assert calls == [(conf_dir() / "train", "smoke", ["seed=3"]),
                     (conf_dir() / "train", "infvsr_tiny", ["architecture=other"])]
    assert capsys.readouterr().out.splitlines() == [f"trained: {tmp_path / 'smoke'}", f"trained: {tmp_path / 'infvsr_tiny'}"]
    assert main(["train", "smoke", "architecture=othr"]) == 2
    assert capsys.readouterr().err == "error: unknown architecture 'othr'; did you mean 'other'?\n"


def test_unwritable_output_dir_gives_one_line(tmp_path, folder_dataset):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = cli_subprocess("run", "dataset=folder", f"dataset.root={folder_dataset()}",
                          f"output_root={blocker / 'runs'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: output folder {blocker / 'runs'} is not writable: Not a directory"]


def test_missing_dataset_root_gives_one_line(tmp_path):
    proc = cli_subprocess("run", "dataset=folder", f"dataset.root={tmp_path / 'nothing'}", f"output_root={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: dataset 'folder': no LR folder at {tmp_path / 'nothing' / 'LR'}"]


def test_preflight_checks_the_files_a_method_declares_with_no_method_named_in_the_cli(tmp_path, monkeypatch):
    """A method's weights hook (methods.base.REQUIRED_WEIGHTS) says which files its options load; the CLI
    locates them before Hydra starts, for any method: a toy one here, and no method is named in the preflight."""
    import inspect

    from infvsr_bench.app import cli
    from infvsr_bench.weights import WeightFile, WeightsMissingError
    from methods.base import REQUIRED_WEIGHTS

    toy = WeightFile("toy", "toy.safetensors", "the toy method's weights", source="the toy's authors")
    if "test_toy_weights" not in REQUIRED_WEIGHTS:
        REQUIRED_WEIGHTS.register("test_toy_weights", lambda options: [] if options.get("weights") == "random" else [toy])
    folder = f"method.weights_dir={tmp_path}"
    with pytest.raises(WeightsMissingError, match=f"toy.safetensors .*-> {tmp_path / 'toy'}"):
        cli._preflight_weights(["method=test_toy_weights", folder])
    cli._preflight_weights(["method=test_toy_weights", folder, "method.weights=random"])  # declares no file
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.safetensors").write_bytes(b"x")
    cli._preflight_weights(["method=test_toy_weights", folder])
    assert "infvsr" not in inspect.getsource(cli._preflight_weights).replace("infvsr_bench", "")


def test_preflight_imports_no_torch(tmp_path):
    """The weights preflight answers before torch loads: a missing InfVSR file is reported in well under a second."""
    code = ("import sys; from infvsr_bench.app.cli import check_overrides\n"
            f"check_overrides(['method=infvsr', 'output_root={tmp_path / 'runs'}'])\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
