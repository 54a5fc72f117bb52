"""Built-in methods equal direct calls of the libraries they wrap; precomputed checks its inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import downscale, real_frames, write_clip
from PIL import Image

from infvsr_bench.errors import ClipError, ConfigError
from methods import ClipInfo, build_method


def test_bicubic_is_pytorch_antialiased_bicubic():
    lr = downscale(real_frames(5))
    out = build_method({"name": "bicubic"}).process(lr)
    x = torch.from_numpy(lr).permute(0, 3, 1, 2).double() / 255
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", antialias=True, align_corners=False)
    ref = (ref.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    assert out.shape == (5, 64, 96, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 1  # float32 vs float64 rounding only


def test_lanczos_is_pil_lanczos():
    lr = downscale(real_frames(3))
    out = build_method({"name": "lanczos"}).process(lr)
    ref = np.asarray(Image.fromarray(lr[1]).resize((96, 64), Image.LANCZOS))
    np.testing.assert_array_equal(out[1], ref)


def test_method_info_records_parameters_and_device():
    info = build_method({"name": "bicubic", "chunk_size": 8}).info()
    assert info["parameters"] == 0 and info["device"] == "cpu" and info["chunk_size"] == 8
    assert info["causal"] is True and info["weights"] == "none"


def test_precomputed_replays_and_checks(tmp_path):
    sr = real_frames(10)
    write_clip(tmp_path / "out" / "clipA.mkv", sr)
    method = build_method({"name": "precomputed", "root": str(tmp_path / "out")})
    method.reset(ClipInfo("clipA", 10, 16, 24, 25.0))
    got = np.concatenate([method.process(np.zeros((4, 16, 24, 3), np.uint8)) for _ in range(2)]
                         + [method.process(np.zeros((2, 16, 24, 3), np.uint8))])
    np.testing.assert_array_equal(got, sr)
    with pytest.raises(ClipError, match="has 10 frames, LR has 12"):
        method.reset(ClipInfo("clipA", 12, 16, 24, 25.0))
    with pytest.raises(ClipError, match="expected 100x64"):
        method.reset(ClipInfo("clipA", 10, 16, 25, 25.0))
    with pytest.raises(ClipError, match="no precomputed output for clip 'clipB'"):
        method.reset(ClipInfo("clipB", 10, 16, 24, 25.0))
    with pytest.raises(ConfigError, match="needs method.root"):
        build_method({"name": "precomputed"})
