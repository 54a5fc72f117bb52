"""InfVSR training end to end (issue 13): the CI smoke training from scratch (every stage, cross-chunk DMD
included) whose losses fall, its exported model run by `run method=infvsr`, and the offline fallback to
the shipped infvsr-tiny model (its label, its card, the CLI preflight)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import downscale, real_frames, write_clip

from infvsr_bench.app.cli import main
from infvsr_bench.checksums import sha256_file
from infvsr_bench.errors import InfvsrError
from methods import build_method

TINY_DIR = Path(__file__).resolve().parents[1] / "methods" / "infvsr" / "tiny"


def _log(folder: Path, key: str) -> list[float]:
    entries = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    return [e[key] for e in entries if key in e]


@pytest.mark.slow
def test_smoke_training_from_scratch_losses_fall_and_its_model_runs(tmp_path):
    """CI smoke: `train smoke` (VAE -> teacher -> student init -> student with cross-chunk DMD) in about a
    minute on 2 cores; the teacher's flow loss and the student's latent loss fall; the exported model
    (labelled a smoke model) runs through `run method=infvsr`."""
    out = tmp_path / "smoke"
    assert main(["train", "smoke", f"output_dir={out}"]) == 0
    flow = _log(out / "teacher", "flow")
    latent = _log(out / "student_init", "latent")
    assert np.mean(flow[-4:]) < np.mean(flow[:4]), flow
    assert np.mean(latent[-4:]) < 0.5 * np.mean(latent[:4]), latent
    dmd, fake = _log(out / "student", "dmd"), _log(out / "student", "fake_flow")
    assert dmd[0] == 0.0 and max(dmd) > 0 and len(fake) == 12  # fake starts as the teacher, then departs
    card = json.loads((out / "infvsr_tiny.json").read_text())
    assert card["smoke"] is True and card["summary"].startswith("SMOKE model")
    assert card["sha256"] == sha256_file(out / "infvsr_tiny.safetensors")
    assert {"recon_psnr", "sr_psnr", "bicubic_psnr"} <= set(card["metrics"])
    # The summary puts the tiny model's PSNR beside bicubic's and its VAE's ceiling (held-out clips).
    m = card["metrics"]
    assert (f"SR PSNR {m['sr_psnr']:.2f} dB vs bicubic {m['bicubic_psnr']:.2f} dB, its VAE's reconstruction "
            f"{m['recon_psnr']:.2f} dB (the ceiling)") in card["summary"]
    assert json.loads((out / "split.json").read_text())["train"] == card["data_split"]["train"]
    # Re-running the finished recipe trains nothing again.
    before = (out / "student" / "final.safetensors").stat().st_mtime_ns
    assert main(["train", "smoke", f"output_dir={out}"]) == 0
    assert (out / "student" / "final.safetensors").stat().st_mtime_ns == before

    weights = tmp_path / "weights" / "infvsr"
    weights.mkdir(parents=True)
    (weights / "infvsr_tiny.safetensors").write_bytes((out / "infvsr_tiny.safetensors").read_bytes())
    gt = real_frames(14, (64, 96))
    write_clip(tmp_path / "data" / "GT" / "clip.mkv", gt)
    write_clip(tmp_path / "data" / "LR" / "clip.mkv", downscale(gt))
    code = main(["run", "method=infvsr", f"method.weights_dir={weights.parent}", "method.device=cpu",
                 "method.scene_detection=false", "dataset=folder", f"dataset.root={tmp_path / 'data'}",
                 f"output_root={tmp_path / 'runs'}", "progress=false"])
    assert code == 0
    run = tmp_path / "runs" / "folder" / "infvsr"
    record = json.loads((run / "run.json").read_text())
    assert record["method"]["weights"] == "tiny" and record["method"]["architecture"] == "infvsr-tiny"
    assert record["method"]["weights_sha256"] == {"infvsr_tiny.safetensors": card["sha256"]}
    assert record["method"]["model_card"]["smoke"] is True
    assert pd.read_parquet(run / "clips.parquet").loc[0, "frames"] == 14


def test_shipped_tiny_model_matches_its_card():
    card = json.loads((TINY_DIR / "infvsr_tiny.json").read_text())
    assert card["sha256"] == sha256_file(TINY_DIR / "infvsr_tiny.safetensors")
    assert card["model"] == "infvsr-tiny" and card["data_split"]["train"] and card["data_split"]["val"]
    # The shipped file is what `train infvsr_tiny` produced; a smoke model would have to say so.
    assert card["smoke"] is (card["recipe"] == "smoke")
    if card["smoke"]:
        assert card["summary"].startswith("SMOKE model")
    assert (TINY_DIR / "infvsr_tiny.safetensors").stat().st_size < 16 << 20


def test_without_official_files_infvsr_runs_the_tiny_model_with_one_notice(tmp_path, caplog):
    method = build_method({"name": "infvsr", "weights_dir": str(tmp_path), "device": "cpu", "scene_detection": False})
    notices = [r.getMessage() for r in caplog.records if r.getMessage().startswith("notice:")]
    assert len(notices) == 1 and "official InfVSR files are not in" in notices[0] and "infvsr-tiny" in notices[0]
    info = method.info()  # weights "tiny": reports label the run infvsr-tiny, never as the paper model
    assert method.weights == "tiny" and info["weights"] == "tiny" and info["architecture"] == "infvsr-tiny"
    assert info["weights_sha256"] == {"infvsr_tiny.safetensors": sha256_file(TINY_DIR / "infvsr_tiny.safetensors")}
    from infvsr_bench.contracts import ClipInfo

    method.reset(ClipInfo("c", 21, 16, 24, 25.0))
    out = [method.process(np.zeros((21, 16, 24, 3), np.uint8)), method.flush()]
    assert np.concatenate(out).shape == (21, 64, 96, 3)
    # An explicit request for the paper's model still demands its files.
    with pytest.raises(InfvsrError, match="InfVSR.ckpt") as err:
        build_method({"name": "infvsr", "weights_dir": str(tmp_path), "weights": "pretrained"})
    assert "\n" not in str(err.value)


def test_cli_preflight_accepts_the_tiny_fallback_and_demands_official_files_when_asked(tmp_path, capsys):
    from infvsr_bench.app.cli import check_overrides

    folder = f"method.weights_dir={tmp_path}"
    check_overrides(["method=infvsr", folder, f"output_root={tmp_path / 'runs'}"])  # tiny ships: no error
    check_overrides(["method=infvsr", folder, "method.weights=tiny", f"output_root={tmp_path / 'runs'}"])
    for weights in ("pretrained", "random"):
        code = main(["run", "method=infvsr", folder, f"method.weights={weights}", f"output_root={tmp_path / 'runs'}"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "InfVSR.ckpt" in err and "DAPE.pth" in err, err
        assert "infvsr_tiny" not in err
