"""The shipped external-tool configs (conf/method/<tool>.yaml) against stand-ins of the tools.

Each stand-in (tests/data/stand_ins/<tool>) mimics its tool's documented interface and behaviour
(../shared/external_methods.md): flags, input kind, frame-count and size rules, output naming and
format, paths relative to its working directory. Their model is nearest-neighbour x4, so the frames
the harness gets back are checked against ``lr.repeat(4)``: exactly for lossless outputs, by PSNR for
lossy ones. Each tool also gets a run with its rule violated, which must fail the clip saying why.
No real tool runs here (no GPU, no clones).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import real_frames
from omegaconf import OmegaConf

from infvsr_bench.app.cli import compose, main
from infvsr_bench.errors import ClipError, ConfigError
from methods import ClipInfo, build_method

STAND_INS = Path(__file__).parent / "data" / "stand_ins"
TOOLS = ("flashvsr", "seedvr2", "star", "upscale_a_video", "mgld_vsr", "dove", "realbasicvsr", "infvsr_official",
         "stream_diffvsr")
# Weight files each tool loads (relative to its clone), created empty in the stand-in clone.
WEIGHTS = {
    "flashvsr": ["examples/WanVSR/FlashVSR/diffusion_pytorch_model_streaming_dmd.safetensors",
                 "examples/WanVSR/FlashVSR/Wan2.1_VAE.pth", "examples/WanVSR/FlashVSR/LQ_proj_in.ckpt"],
    "seedvr2": ["ckpts/seedvr2_ema_3b.pth", "ckpts/ema_vae.pth"],
    "star": ["pretrained_weight/light_deg.pt"],
    "upscale_a_video": [f"pretrained_models/upscale_a_video/{p}"
                        for p in ("unet/unet_video.bin", "vae/vae_3d.bin", "propagator/raft-things.pth")],
    "dove": ["pretrained_models/DOVE/model_index.json"],
    "realbasicvsr": ["checkpoints/RealBasicVSR_x4.pth"],
}
# Weight folders given as method.weights_dir.
WEIGHTS_DIR = {
    "mgld_vsr": ["mgldvsr_unet.ckpt", "video_vae_cfw.ckpt", "v2-1_512-ema-pruned.ckpt", "raft-things.pth",
                 "spynet_sintel_final-3d2a1287.pth"],
    "infvsr_official": ["InfVSR.ckpt", "Wan2.1_VAE.pth", "ram_swin_large_14m.pth", "DAPE.pth"],
    "stream_diffvsr": [f"{sub}/config.json" for sub in ("controlnet", "unet", "vae", "scheduler")],
}


@pytest.fixture
def tool_python(tmp_path: Path) -> str:
    """A tool's venv: a python whose site-packages (on PYTHONPATH) hold the stand-ins' helpers and mediapy."""
    site = tmp_path / "venv" / "site"
    shutil.copytree(STAND_INS / "site", site)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return str(python)


def clone(tmp_path: Path, tool: str) -> dict[str, str]:
    """The stand-in clone of ``tool`` with its weights in place: the options a user sets."""
    repo = tmp_path / f"{tool}_clone"
    shutil.copytree(STAND_INS / tool, repo)
    options = {"repo": str(repo)}
    for rel in WEIGHTS.get(tool, []):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(b"")
    if tool in WEIGHTS_DIR:
        weights = tmp_path / f"{tool}_weights"
        for rel in WEIGHTS_DIR[tool]:
            (weights / rel).parent.mkdir(parents=True, exist_ok=True)
            (weights / rel).write_bytes(b"")
        options["weights_dir"] = str(weights)
    return options


def tool_options(tool: str) -> dict:
    """conf/method/<tool>.yaml resolved through its defaults list, as the CLI does."""
    return OmegaConf.to_container(compose([f"method={tool}"]).method, resolve=True)


def build(tool: str, tmp_path: Path, python: str, **overrides):
    options = {**tool_options(tool), **clone(tmp_path, tool), "python": python,
               "work_dir": str(tmp_path / "work"), "chunk_size": 4, **overrides}
    return build_method(options)


def run(method, lr: np.ndarray, name: str = "clip.v1") -> np.ndarray:
    """Feed ``lr`` in chunks as the runner does and collect every output chunk."""
    method.reset(ClipInfo(name, len(lr), lr.shape[1], lr.shape[2], 25.0))
    for i in range(0, len(lr), 5):
        method.process(lr[i: i + 5])
    chunks = list(method.flush_chunks())
    return np.concatenate(chunks) if chunks else np.zeros((0,), np.uint8)


def lr_clip(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return real_frames(n, size=(h, w), seed=seed)


def nearest_x4(lr: np.ndarray) -> np.ndarray:
    return lr.repeat(4, axis=1).repeat(4, axis=2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def assert_exact(out: np.ndarray, lr: np.ndarray) -> None:
    assert out.shape == (len(lr), lr.shape[1] * 4, lr.shape[2] * 4, 3)
    np.testing.assert_array_equal(out, nearest_x4(lr))


def assert_close(out: np.ndarray, lr: np.ndarray, min_psnr: float = 35.0) -> None:
    """Lossy output: right count and size, and each frame is its own LR frame's (not a neighbour's)."""
    ref = nearest_x4(lr)
    assert out.shape == ref.shape
    for i in range(len(lr)):
        own = psnr(out[i], ref[i])
        assert own > min_psnr, (i, own)
        if i:
            assert own > psnr(out[i], ref[i - 1]) + 5


def record(method) -> dict:
    return method.clip_record()


# -- every tool config --------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_config_names_each_unset_user_option_in_one_line(tool, tmp_path, tool_python):
    options = {**tool_options(tool), "work_dir": str(tmp_path / "work")}
    assert "<CHECK" not in str(options)
    assert {"repo", "python"} <= set(options["required"])
    for key in options["required"]:
        with pytest.raises(ConfigError) as info:
            build_method({**options, **clone(tmp_path / key, tool), "python": tool_python, key: ""})
        message = str(info.value)
        assert message.startswith(f"method {options['label']!r} needs method.{key}=<") and "\n" not in message
    with pytest.raises(ConfigError, match=r"method.repo=/no/such/clone is not a folder"):
        build_method({**options, **clone(tmp_path / "bad", tool), "repo": "/no/such/clone", "python": tool_python})
    method = build_method({**options, **clone(tmp_path, tool), "python": tool_python})
    assert method.chunk_rule is not None  # every tool declares its own chunk layout


def test_unset_repo_is_one_error_line_from_the_cli(capsys):
    assert main(["run", "method=flashvsr", "progress=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: method 'flashvsr' needs method.repo=<path of your FlashVSR clone> (unset)"


# -- FlashVSR: no CLI (wrapper), 8n+5 >= 21 frames, LR multiples of 32 ---------------------------------


def test_flashvsr_wrapper_gets_every_frame_exactly_x4(tmp_path, tool_python):
    lr = lr_clip(22, 40, 56)  # 22 -> 29 = 8*3+5 frames; 40x56 -> 64x64
    method = build("flashvsr", tmp_path, tool_python)
    out = run(method, lr)
    assert_exact(out, lr)
    stats = record(method)
    assert stats["tool_input_frames"] == 29 and stats["tool_output_frames"] == 29
    assert stats["tool_input_size"] == "64x64"
    assert stats["tool_output_codec"] == "png" and stats["tool_output_lossy"] is False  # not its crf-20 mp4
    method.reset(ClipInfo("c", 40, 40, 56, 25.0))
    assert method.chunk_layout() == [0, 21, 29, 37]


def test_flashvsr_rules_violated_fail_the_clip(tmp_path, tool_python):
    lr = lr_clip(22, 40, 56)
    no_frames_rule = build("flashvsr", tmp_path / "a", tool_python, frames_multiple=1, frames_offset=0, frames_min=0)
    with pytest.raises(ClipError, match=r"the command wrote 21 frames to .*, expected 22; see .*tool.log"):
        run(no_frames_rule, lr)  # F = 25 <= 22 + 4: 21 frames out
    too_short = build("flashvsr", tmp_path / "b", tool_python, frames_min=0)
    with pytest.raises(ClipError, match=r"command exited with code 1"):
        run(too_short, lr[:10])  # 13 frames: F = 17, no streaming step
    assert "need at least one array to concatenate" in (tmp_path / "b" / "work" / "clip.v1" / "tool.log").read_text()
    no_size_rule = build("flashvsr", tmp_path / "c", tool_python, size_multiple=1)
    with pytest.raises(ClipError, match=r"wrote 128x128 frames to .*, expected 224x160 \(x4 of 56x40\)"):
        run(no_size_rule, lr)  # 160x224 centre-cropped to 128-multiples


# -- SeedVR2: torchrun, PYTHONPATH, mediapy qp 28 replaced by PNGs, LR multiples of 4 -------------------


@pytest.mark.slow
def test_seedvr2_under_torchrun_gets_lossless_frames_and_its_size_rule(tmp_path, tool_python):
    lr = lr_clip(6, 30, 42)  # 30x42 -> 32x44
    method = build("seedvr2", tmp_path / "a", tool_python)
    out = run(method, lr)
    assert_exact(out, lr)
    stats = record(method)
    assert stats["tool_input_size"] == "44x32" and stats["tool_output_codec"] == "png"
    assert not stats["tool_output_lossy"]
    no_size_rule = build("seedvr2", tmp_path / "b", tool_python, size_multiple=1)
    with pytest.raises(ClipError, match=r"wrote 160x112 frames to .*, expected 168x120"):
        run(no_size_rule, lr)  # 120x168 centre-cropped to 16-multiples


# -- STAR: one video file, lossy crf-0 4:2:0 output ------------------------------------------------------


def test_star_reads_one_video_and_its_lossy_output_is_flagged(tmp_path, tool_python):
    lr = lr_clip(9, 30, 42)  # any count and size
    method = build("star", tmp_path / "a", tool_python)
    assert_close(run(method, lr), lr)
    stats = record(method)
    assert stats["tool_output_codec"] == "h264 yuv420p" and stats["tool_output_lossy"] is True
    assert stats["tool_input_size"] == "42x30"
    folder_input = build("star", tmp_path / "b", tool_python,
                         command=tool_options("star")["command"].replace("{lr_video}", "{lr_root}"))
    with pytest.raises(ClipError, match="command exited with code 1"):
        run(folder_input, lr)  # --input_path takes one video file, not a folder
    assert "cannot read video" in (tmp_path / "b" / "work" / "clip.v1" / "tool.log").read_text()


# -- Upscale-A-Video: --no_llava, video input, imageio's 16-multiples, lossy ------------------------------


def test_upscale_a_video_pads_to_multiples_of_4_and_flags_its_lossy_mp4(tmp_path, tool_python):
    lr = lr_clip(7, 30, 42)
    method = build("upscale_a_video", tmp_path / "a", tool_python)
    assert_close(run(method, lr), lr)
    stats = record(method)
    assert stats["tool_input_size"] == "44x32" and stats["tool_output_lossy"] is True
    no_size_rule = build("upscale_a_video", tmp_path / "b", tool_python, size_multiple=1)
    with pytest.raises(ClipError, match=r"wrote 176x128 frames to .*, expected 168x120"):
        run(no_size_rule, lr)  # imageio resized 168x120 up to 16-multiples
    with_llava = build("upscale_a_video", tmp_path / "c", tool_python,
                       command=tool_options("upscale_a_video")["command"].replace(" --no_llava", ""))
    with pytest.raises(ClipError, match="command exited with code 1"):
        run(with_llava, lr)
    assert "llava-v1.5-13b" in (tmp_path / "c" / "work" / "clip.v1" / "tool.log").read_text()


# -- MGLD-VSR: wrapper fixes its config paths; segments of 5; LR at least 128 -----------------------------


def test_mgld_vsr_wrapper_redirects_its_weight_paths_and_pads_small_lr(tmp_path, tool_python):
    lr = lr_clip(7, 36, 50)  # 7 frames -> 10 names inside; 36x50 -> 128x128
    method = build("mgld_vsr", tmp_path / "a", tool_python)
    assert_exact(run(method, lr), lr)
    stats = record(method)
    assert stats["tool_input_size"] == "128x128" and stats["tool_output_frames"] == 7
    assert stats["tool_output_codec"] == "png" and not stats["tool_output_lossy"]
    clone_files = sorted(p.relative_to(tmp_path / "a" / "mgld_vsr_clone").as_posix()
                         for p in (tmp_path / "a" / "mgld_vsr_clone").rglob("*") if p.is_file())
    assert clone_files == sorted(p.relative_to(STAND_INS / "mgld_vsr").as_posix()
                                 for p in (STAND_INS / "mgld_vsr").rglob("*") if p.is_file())  # clone untouched
    no_size_rule = build("mgld_vsr", tmp_path / "b", tool_python, size_min=0)
    with pytest.raises(ClipError, match=r"wrote 207x144 frames to .*, expected 200x144"):
        run(no_size_rule, lr)
    no_weights = build("mgld_vsr", tmp_path / "c", tool_python)
    os.remove(Path(no_weights.config.weights_dir) / "raft-things.pth")
    with pytest.raises(ClipError, match="command exited with code 1"):
        run(no_weights, lr)
    assert "raft-things.pth missing in" in (tmp_path / "c" / "work" / "clip.v1" / "tool.log").read_text()


# -- DOVE: video folder in, --png_save 3-digit frames out ---------------------------------------------------


def test_dove_png_frames_come_back_exactly(tmp_path, tool_python):
    lr = lr_clip(11, 30, 42)  # not 8n+1, not 16-multiples: DOVE pads inside
    method = build("dove", tmp_path / "a", tool_python)
    assert_exact(run(method, lr), lr)
    assert record(method)["tool_output_codec"] == "png" and record(method)["tool_input_frames"] == 11
    frames_in = build("dove", tmp_path / "b", tool_python, input_format="png")
    with pytest.raises(ClipError, match=r"the command wrote no frames or video under"):
        run(frames_in, lr)  # DOVE globs videos only
    assert "0 videos in" in (tmp_path / "b" / "work" / "clip.v1" / "tool.log").read_text()


# -- RealBasicVSR: frame folder in and out, --max_seq_len, LR at least 64 -------------------------------


def test_realbasicvsr_frame_folders_and_its_minimum_size(tmp_path, tool_python):
    lr = lr_clip(5, 40, 60)  # -> 64x64
    method = build("realbasicvsr", tmp_path / "a", tool_python)
    assert_exact(run(method, lr), lr)  # "clip.v1": the LR folder has no dot, or the tool takes it for a video
    assert record(method)["tool_input_size"] == "64x64"
    no_size_rule = build("realbasicvsr", tmp_path / "b", tool_python, size_min=0)
    with pytest.raises(ClipError, match="command exited with code 1"):
        run(no_size_rule, lr)
    assert "should be at least 64" in (tmp_path / "b" / "work" / "clip.v1" / "tool.log").read_text()
    readme_flag = build("realbasicvsr", tmp_path / "c", tool_python,
                        command=tool_options("realbasicvsr")["command"].replace("--max_seq_len", "--max-seq-len"))
    with pytest.raises(ClipError, match="command exited with code 2"):
        run(readme_flag, lr)
    assert "unrecognized arguments: --max-seq-len" in (tmp_path / "c" / "work" / "clip.v1" / "tool.log").read_text()


# -- InfVSR official: video in, --yuv444p crf 0 out (still lossy for RGB) -----------------------------------


def test_infvsr_official_yuv444p_output_is_close_and_flagged_lossy(tmp_path, tool_python):
    lr = lr_clip(10, 30, 42)
    method = build("infvsr_official", tmp_path / "a", tool_python)
    assert_close(run(method, lr), lr, min_psnr=45)
    stats = record(method)
    assert stats["tool_output_codec"] == "h264 yuv444p" and stats["tool_output_lossy"] is True
    method.reset(ClipInfo("c", 40, 30, 42, 25.0))
    assert method.chunk_layout() == [0, 9, 21, 33]
    no_weights = build("infvsr_official", tmp_path / "b", tool_python)
    os.remove(Path(no_weights.config.weights_dir) / "DAPE.pth")
    with pytest.raises(ClipError, match="command exited with code 1"):
        run(no_weights, lr)
    assert "missing model files" in (tmp_path / "b" / "work" / "clip.v1" / "tool.log").read_text()


# -- Stream-DiffVSR: --model_id explicit, sequence folders, LR multiples of 8 -------------------------------


def test_stream_diffvsr_model_id_and_size_rule(tmp_path, tool_python):
    assert tool_options("stream_diffvsr")["weights_dir"] == "Jamichsu/Stream-DiffVSR"  # never its SD x4 default
    lr = lr_clip(6, 30, 42)  # -> 32x48
    method = build("stream_diffvsr", tmp_path / "a", tool_python)
    assert_exact(run(method, lr), lr)
    assert record(method)["tool_input_size"] == "48x32"
    assert method.chunk_layout() == []  # frame by frame: no chunk seams
    no_size_rule = build("stream_diffvsr", tmp_path / "b", tool_python, size_multiple=1)
    with pytest.raises(ClipError, match=r"wrote 160x96 frames to .*, expected 168x120"):
        run(no_size_rule, lr)  # resized down to 24x40 first


# -- through the CLI: clips.parquet records the codec and the layout ----------------------------------------


def test_cli_run_records_output_codec_and_lossiness_per_clip(folder_dataset, tmp_path, tool_python):
    root = folder_dataset(lengths=(8, 7), size=(64, 96))
    user = clone(tmp_path, "upscale_a_video")
    code = main(["run", "method=upscale_a_video", f"method.repo={user['repo']}", f"method.python={tool_python}",
                 "run_name=upscale_a_video", "dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}",
                 "progress=false"])
    assert code == 0
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "upscale_a_video" / "clips.parquet")
    assert clips["tool_output_codec"].tolist() == ["h264 yuv420p"] * 2 and clips["tool_output_lossy"].all()
    assert [list(s) for s in clips["chunk_starts"]] == [[0, 6], [0, 6]]
    assert (clips["chunk_layout"] == "declared by the method").all()


# -- {gpu_index} follows an inherited CUDA_VISIBLE_DEVICES ------------------------------------------------


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch) -> None:
    """nvidia-smi reporting four GPUs, GPU k using (k+1)*1000 MiB."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\n" + "".join(f'echo "{k}, GPU-uuid-{k}, {(k + 1) * 1000}"\n' for k in range(4)))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(
    "visible,device,physical,peak",
    [(None, "cuda:1", "1", 2000), ("2", "cuda:0", "2", 3000), ("1,3", "cuda:1", "3", 4000),
     ("GPU-uuid-2", "cuda", "GPU-uuid-2", 3000)],
)
def test_gpu_index_is_the_physical_gpu_and_the_one_watched(visible, device, physical, peak, tmp_path, monkeypatch,
                                                           fake_nvidia_smi):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    seen = tmp_path / "seen"
    tool = tmp_path / "tool.py"
    tool.write_text("import os, sys, shutil\n"
                    f"open({str(seen)!r}, 'w').write(os.environ['CUDA_VISIBLE_DEVICES'])\n"
                    "shutil.copytree(sys.argv[1], sys.argv[2] + '/sr')\n")
    method = build_method({"name": "command", "command": f"{{python}} {tool} {{lr_dir}} {{out_dir}}", "scale": 1,
                           "env": {"CUDA_VISIBLE_DEVICES": "{gpu_index}"}, "device": device,
                           "gpu_poll_seconds": 0.05, "work_dir": str(tmp_path / "work")})
    lr = lr_clip(2, 16, 24)
    np.testing.assert_array_equal(run(method, lr), lr)
    assert seen.read_text() == physical  # the tool runs on the GPU the user made visible
    assert record(method)["tool_peak_gpu_mib"] == peak  # and that GPU alone is watched


def test_device_outside_the_inherited_visible_gpus_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(ConfigError, match=r"device cuda:1 is not among the 1 GPU\(s\) of the inherited "
                                          r"CUDA_VISIBLE_DEVICES=2"):
        build_method({"name": "command", "command": "tool {lr_dir}", "device": "cuda:1",
                      "work_dir": str(tmp_path)})
