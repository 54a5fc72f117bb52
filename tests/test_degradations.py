"""LR degradations: BI and BD against independent references, the realistic chain and its H.264 stage."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage import data

from infvsr_bench.errors import ConfigError
from infvsr_bench.media.degradations import build_degradation

GT = data.astronaut()[:192, :192]  # real photo content, divisible by 2, 3 and 4


def moving_clip(frames: int, size: int = 64) -> np.ndarray:
    """A short clip panning over the astronaut photo."""
    return np.stack([GT[40 + i : 40 + i + size, 60 + 2 * i : 60 + 2 * i + size] for i in range(frames)])


def test_bicubic_matches_torch_and_pil():
    lr = build_degradation({"type": "bicubic"}, 4).apply(GT[None])
    x = torch.from_numpy(GT).permute(2, 0, 1)[None].float()
    ref = F.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)
    assert np.array_equal(lr[0], ref.round().clamp(0, 255).byte()[0].permute(1, 2, 0).numpy())
    # Independent reference: PIL's antialiased bicubic (same a=-0.5 kernel, 8-bit intermediate rounding).
    pil = np.asarray(Image.fromarray(GT).resize((48, 48), Image.BICUBIC))
    assert np.abs(lr[0].astype(int) - pil).max() <= 2


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bd_matches_scipy_gaussian_then_stride(scale):
    deg = build_degradation({"type": "bd"}, scale)
    lr = deg.apply(np.stack([GT, GT[::-1]]))
    for gt, out in zip([GT, GT[::-1]], lr):
        # BasicSR's torch 'reflect' padding excludes the edge pixel: scipy's mode='mirror'.
        blurred = gaussian_filter(gt.astype(np.float64), sigma=(0.4 * scale, 0.4 * scale, 0), mode="mirror")
        assert np.abs(out - blurred[::scale, ::scale]).max() <= 1.0
        assert np.abs(out - blurred[scale // 2 :: scale, scale // 2 :: scale]).mean() > 3  # the offset matters
    spec = deg.spec()
    assert (spec["sigma"], spec["kernel_size"], spec["offset"]) == (pytest.approx(0.4 * scale), 13, 0)


def test_bd_sigma_option_and_rebuild():
    deg = build_degradation({"type": "bd", "sigma": 1.6}, 2)
    blurred = gaussian_filter(GT.astype(np.float64), sigma=(1.6, 1.6, 0), mode="mirror")[::2, ::2]
    assert np.abs(deg.apply(GT[None])[0] - blurred).max() <= 1.0
    assert build_degradation(json.loads(json.dumps(deg.spec())), 2).spec() == {**deg.spec(), "seed": None}
    with pytest.raises(ConfigError, match="offset"):
        build_degradation({**deg.spec(), "offset": 2}, 2)
    with pytest.raises(ConfigError, match="scale"):
        build_degradation(deg.spec(), 4)


@pytest.mark.parametrize("kind", ["bicubic", "bd", "realistic"])
def test_indivisible_size_raises_and_flush_is_empty(kind):
    deg = build_degradation({"type": kind}, 4)
    deg.reset(0)
    with pytest.raises(ConfigError, match="62x64.*scale 4"):
        deg.apply(np.zeros((1, 62, 64, 3), np.uint8))
    if kind != "realistic":
        deg.apply(np.zeros((2, 64, 48, 3), np.uint8))
        assert deg.flush().shape == (0, 16, 12, 3)


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown option 'crff'.*did you mean 'crf'"):
        build_degradation({"type": "realistic", "crff": 30}, 4)
    with pytest.raises(ConfigError, match="crf"):
        build_degradation({"type": "realistic", "crf": 60}, 4)
    with pytest.raises(ConfigError, match="did you mean 'bicubic'"):
        build_degradation({"type": "bicubc"}, 4)


def run_clip(deg, clip: np.ndarray, seed: int, chunk: int) -> tuple[np.ndarray, list[int]]:
    deg.reset(seed)
    outs = [deg.apply(clip[i : i + chunk]) for i in range(0, len(clip), chunk)] + [deg.flush()]
    return np.concatenate(outs), [len(o) for o in outs]


def test_realistic_preserves_frames_and_is_deterministic_per_seed():
    clip = moving_clip(10)
    deg = build_degradation({"type": "realistic", "crf": 30}, 4)
    whole, counts = run_clip(deg, clip, 5, 10)
    spec = deg.spec()
    assert whole.shape == (10, 16, 16, 3) and whole.dtype == np.uint8 and sum(counts) == 10
    chunked, counts = run_clip(build_degradation({"type": "realistic", "crf": 30}, 4), clip, 5, 3)
    assert chunked.tobytes() == whole.tobytes() and sum(counts) == 10  # state carries across chunks
    other, _ = run_clip(deg, clip, 6, 10)
    assert np.abs(other.astype(int) - whole).mean() > 2 and deg.spec()["params"] != spec["params"]
    assert spec["crf"] == 30 and spec["seed"] == 5 and spec["codec"] == "libx264" and len(spec["params"]["stages"]) == 2
    json.dumps(spec)
    with pytest.raises(RuntimeError, match="reset"):
        deg.apply(clip)  # the clip ended with flush()


def x264_reference(frames: np.ndarray, crf: int, preset: str) -> np.ndarray:
    """Independent H.264 round trip through an MP4 container (PyAV stream API, single thread)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = *frames.shape[1:3], "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_realistic_output_is_h264_compressed_chain():
    clip = moving_clip(8)
    deg = build_degradation({"type": "realistic", "crf": 35, "preset": "fast"}, 4)
    out, _ = run_clip(deg, clip, 11, 4)
    deg.reset(11)
    plain = deg.degrade(clip)  # same chain, same noise, no video compression
    assert out.shape == plain.shape
    err = np.abs(out.astype(float) - plain)
    assert err.mean() > 1.0 and err.mean() < 40
    assert np.array_equal(out, x264_reference(plain, 35, "fast"))
    mild, _ = run_clip(build_degradation({"type": "realistic", "crf": 10, "preset": "fast"}, 4), clip, 11, 4)
    assert np.abs(mild.astype(float) - plain).mean() < err.mean()


def test_realistic_odd_lr_size_is_padded_for_yuv420():
    clip = moving_clip(3, size=60)  # LR 15x15
    out, _ = run_clip(build_degradation({"type": "realistic"}, 4), clip, 0, 2)
    assert out.shape == (3, 15, 15, 3)
