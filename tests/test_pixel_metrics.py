"""PSNR / SSIM against independent implementations (scikit-image) on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metric_tester import feed
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from infvsr_bench.metrics import build_metric
from infvsr_bench.metrics.pixel import psnr, psnr_batch, ssim, ssim_batch


def _pairs():
    """Real images and degraded copies (noise, blur-like shift, JPEG-like quantisation)."""
    rng = np.random.default_rng(0)
    for img in (data.astronaut(), data.coffee(), data.chelsea()):
        img = img[:200, :240]
        noisy = np.clip(img.astype(int) + rng.normal(0, 8, img.shape).round().astype(int), 0, 255).astype(np.uint8)
        shifted = np.roll(img, 1, axis=1)
        quant = (img // 16 * 16).astype(np.uint8)
        for deg in (noisy, shifted, quant):
            yield img, deg


def _y(img: np.ndarray) -> np.ndarray:
    # scikit-image's BT.601 YCbCr (Y in [16, 235]) on RGB in [0,1]: an independent formula.
    return color.rgb2ycbcr(img)[..., 0]


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_and_ssim_match_scikit_image_on_y(crop):
    for gt, sr in _pairs():
        c = slice(crop, -crop) if crop else slice(None)
        y_gt, y_sr = _y(gt)[c, c], _y(sr)[c, c]
        ref_psnr = peak_signal_noise_ratio(y_gt, y_sr, data_range=255)
        ref_ssim = structural_similarity(
            y_gt, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert psnr(sr, gt, "y", crop) == pytest.approx(ref_psnr, abs=1e-6)
        assert ssim(sr, gt, "y", crop) == pytest.approx(ref_ssim, abs=1e-6)


def test_psnr_and_ssim_match_scikit_image_on_rgb():
    for gt, sr in _pairs():
        ref_psnr = peak_signal_noise_ratio(gt.astype(np.float64), sr.astype(np.float64), data_range=255)
        ref_ssim = structural_similarity(
            gt.astype(np.float64), sr.astype(np.float64), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=255, channel_axis=-1,
        )
        assert psnr(sr, gt, "rgb") == pytest.approx(ref_psnr, abs=1e-6)
        assert ssim(sr, gt, "rgb") == pytest.approx(ref_ssim, abs=1e-6)


def test_psnr_formula_on_known_error():
    gt = np.full((16, 16, 3), 100, np.uint8)
    sr = gt.copy()
    sr[..., :] = 110  # every channel off by 10 -> RGB MSE 100
    assert psnr(sr, gt, "rgb") == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-12)
    assert psnr(gt, gt, "rgb") == float("inf")
    assert ssim(gt, gt, "y") == pytest.approx(1.0)


def test_streaming_metric_records_per_frame_values_and_clip_mean():
    pairs = list(_pairs())[:5]
    gt = np.stack([p[0] for p in pairs])
    sr = np.stack([p[1] for p in pairs])
    metric = build_metric("psnr", {"channel": "y", "crop_border": 0})
    result = feed(metric, sr, gt, [2, 3])
    expected = [peak_signal_noise_ratio(_y(g), _y(s), data_range=255) for g, s in pairs]
    assert result.frames["frame"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(result.frames["psnr"], expected, atol=1e-6)
    assert result.scalars["psnr"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert result.scalars["psnr_identical_frames"] == 0
    metric.reset()
    assert metric.compute().frames.empty


def test_metric_info_records_every_setting():
    info = build_metric("ssim_rgb", {"metric": "ssim", "channel": "rgb", "crop_border": 4}).info()
    assert info["metric"] == "ssim" and info["column"] == "ssim_rgb" and info["version"]
    assert info["settings"] == {"protocol": "basicsr", "channel": "rgb", "crop_border": 4}
    assert info["higher_is_better"] is True and info["kind"] == "FR" and info["protocol"] == "basicsr"


@pytest.mark.parametrize("channel,crop,protocol", [("y", 0, "basicsr"), ("y", 4, "basicsr"), ("rgb", 0, "basicsr"),
                                                   ("rgb", 3, "basicsr"), (None, 0, "dove"), (None, 2, "dove_y")])
def test_batched_torch_path_equals_per_frame_opencv_path(channel, crop, protocol):
    pairs = list(_pairs())
    gt = torch.from_numpy(np.stack([p[0] for p in pairs]))
    sr = torch.from_numpy(np.stack([p[1] for p in pairs]))
    per_frame_ssim = [ssim(s, g, channel, crop, protocol) for g, s in pairs]
    per_frame_psnr = [psnr(s, g, channel, crop, protocol) for g, s in pairs]
    np.testing.assert_allclose(ssim_batch(sr, gt, channel, crop, protocol), per_frame_ssim, rtol=0, atol=1e-12)
    np.testing.assert_allclose(psnr_batch(sr, gt, channel, crop, protocol), per_frame_psnr, rtol=0, atol=1e-10)
    assert psnr_batch(gt[:2], gt[:2]).tolist() == [float("inf")] * 2


def test_streaming_metric_batched_path_records_the_same_frames_and_values():
    pairs = list(_pairs())[:5]
    gt, sr = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    results = []
    for batched in (False, True):
        metric = build_metric("ssim", {"device": "cpu"})
        metric.batched = batched  # the GPU path's code, run on the CPU
        results.append(feed(metric, sr, gt, [3, 2]))
    assert results[1].frames["frame"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(results[1].frames["ssim"], results[0].frames["ssim"], rtol=0, atol=1e-12)
    assert build_metric("psnr", {"device": "cpu"}).info()["runtime"] == {"device": "cpu"}
