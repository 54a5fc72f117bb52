"""Temporal metrics (E*warp, tOF, tLP) on real photographs moved by known shifts, against hand formulas."""

from __future__ import annotations

import functools
import time

import cv2
import numpy as np
import pytest
import torch
from metric_tester import feed
from scipy import ndimage
from skimage import data

from infvsr_bench.errors import ConfigError
from infvsr_bench.metrics import build_metric
from infvsr_bench.metrics.flow import FlowRuntime, build_flow
from infvsr_bench.metrics.teco import ALEXNET, build_lpips
from infvsr_bench.metrics.warp_error import non_occluded, warp
from infvsr_bench.weights import WeightsMissingError, sha256_file

RAFT_FILE = "raft_large_C_T_V1-22a6c225.pth"


@functools.cache
def _photo() -> np.ndarray:
    return ndimage.gaussian_filter(data.astronaut().astype(np.float64), (1.5, 1.5, 0))


def translated(n: int, shift: tuple[float, float], size: tuple[int, int] = (128, 160)) -> np.ndarray:
    """``n`` frames of a (slightly smoothed) real photograph moving by ``shift`` = (dx, dy) px per frame."""
    h, w = size
    m = 8 + int(np.ceil(max(abs(shift[0]), abs(shift[1])) * n))  # margin around the crop
    region = _photo()[150 - m:150 + h + m, 150 - m:150 + w + m]
    frames = [ndimage.shift(region, (shift[1] * t, shift[0] * t, 0), order=3)[m:m + h, m:m + w] for t in range(n)]
    return np.clip(np.stack(frames).round(), 0, 255).astype(np.uint8)


def flicker(frames: np.ndarray, amount: float = 0.08) -> np.ndarray:
    """Per-frame brightness jitter: gains alternate around 1 so that every pair changes brightness."""
    gains = 1 + amount * np.where(np.arange(len(frames)) % 2, 1.0, -1.0)
    return np.clip(frames * gains[:, None, None, None], 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shift", [(2.0, 0.0), (1.3, 0.6)])
def test_ewarp_dis_near_zero_on_consistent_video_and_high_on_flicker(shift):
    video = translated(8, shift)
    m = build_metric("ewarp_dis", {})
    consistent = feed(m, video).scalars["ewarp_dis"]
    flickering = feed(m, flicker(video)).scalars["ewarp_dis"]
    assert consistent < 0.5  # x1e-3: interpolation and the entering border strip only
    assert flickering > 10 * consistent
    assert m.weights == "none" and "flow=dis" in m.version and "preset=medium" in m.version


def _np_warp(x: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bilinear sampling of x (C,H,W) at p + flow (2,H,W), edge-clamped: scipy's map_coordinates."""
    h, w = flow.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [ys + flow[1], xs + flow[0]]
    return np.stack([ndimage.map_coordinates(c, coords, order=1, mode="nearest") for c in x])


def test_warp_matches_scipy_bilinear_sampling():
    rng = np.random.default_rng(0)
    x = data.astronaut()[100:140, 200:250].transpose(2, 0, 1).astype(np.float64) / 255
    flow = rng.uniform(-3, 3, (2, 40, 50))
    got = warp(torch.from_numpy(x)[None], torch.from_numpy(flow)[None])[0].numpy()
    np.testing.assert_allclose(got, _np_warp(x, flow), atol=1e-9)


def test_occlusion_mask_matches_formula_by_hand():
    rng = np.random.default_rng(1)
    h, w = 9, 11
    # integer flows (warping is a clamped lookup): two motions with a boundary, an inconsistent block
    fw = np.zeros((2, h, w))
    fw[0, :, :6], fw[1, :, 6:] = 1.0, 1.0
    bw = -fw
    bw[:, 2:5, 1:4] = rng.integers(-2, 3, (2, 3, 3))
    ys, xs = np.mgrid[0:h, 0:w]
    ty, tx = np.clip(ys + fw[1].astype(int), 0, h - 1), np.clip(xs + fw[0].astype(int), 0, w - 1)
    bw_w = bw[:, ty, tx]  # backward flow brought to frame t by the forward flow

    def sq(v: np.ndarray) -> np.ndarray:
        return (v**2).sum(0)

    occluded = sq(bw_w + fw) > 0.01 * (sq(bw_w) + sq(fw)) + 0.5
    du, dv = np.zeros_like(fw), np.zeros_like(fw)
    du[:, :, :-1] = fw[:, :, :-1] - fw[:, :, 1:]
    dv[:, :-1, :] = fw[:, :-1, :] - fw[:, 1:, :]
    boundary = (du**2 + dv**2).sum(0) > 0.01 * sq(fw) + 0.002
    expected = ~(occluded | boundary)
    assert occluded.any() and boundary.any() and expected.sum() > expected.size / 2
    got = non_occluded(torch.from_numpy(fw)[None], torch.from_numpy(bw)[None])[0].numpy()
    np.testing.assert_array_equal(got, expected)
    # a consistent pair (bw = -fw, constant) has no occlusion and no motion boundary
    const = torch.full((1, 2, h, w), 1.0)
    assert non_occluded(const, -const).all()


def test_ewarp_matches_numpy_reference_given_the_flows():
    video = flicker(translated(4, (1.3, 0.6)), 0.03)
    m = build_metric("ewarp_dis", {})
    got = feed(m, video).frames["ewarp_dis"].to_numpy()
    half = torch.nn.functional.interpolate(torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255,
                                           scale_factor=0.5, mode="bilinear", align_corners=False)
    fw, bw = m.flow(half[:-1], half[1:]).double().numpy(), m.flow(half[1:], half[:-1]).double().numpy()
    img = half.double().numpy()
    expected = []
    for t in range(len(video) - 1):
        mask = non_occluded(torch.from_numpy(fw[t])[None], torch.from_numpy(bw[t])[None])[0].numpy()
        err = ((img[t] - _np_warp(img[t + 1], fw[t])) ** 2).sum(0)
        expected.append(1000 * (err * mask).sum() / mask.sum())
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_ewarp_raft_random_weights_streams_like_one_chunk():
    video = translated(3, (1.3, 0.6))
    m = build_metric("ewarp", {"flow_options": {"iters": 2}, "weights": "random", "batch_size": 4, "device": "cpu"})
    assert m.weights == "random" and m.flow.describe() == "raft(weights=C_T_V1,iters=2,input=correct)"
    assert "iters=2" in m.version and "scale=0.5" in m.version and "channels=sum" in m.version
    whole = feed(m, video)
    chunked = feed(m, video, lengths=(2, 1))  # the second chunk pairs with the first chunk's last frame
    assert whole.frames["frame"].tolist() == [0, 1] == chunked.frames["frame"].tolist()
    assert np.isfinite(whole.frames["ewarp"]).all()
    np.testing.assert_allclose(chunked.frames["ewarp"], whole.frames["ewarp"], rtol=1e-4, atol=1e-6)
    assert chunked.scalars["ewarp"] == pytest.approx(whole.frames["ewarp"].mean(), rel=1e-4)


def test_raft_last_flow_and_shared_encodings_equal_torchvisions_forward():
    flow = build_flow("raft", {"iters": 3}, FlowRuntime(device="cpu", batch_size=3, weights="random"))
    frames = torch.rand(5, 3, 120, 136, generator=torch.Generator().manual_seed(1))
    pad = flow._padding(120, 136)
    assert pad == (0, 0, 4, 4)  # 120 -> 128 rows (RAFT's minimum), 136 is a multiple of 8
    first, second = frames[:-1], frames[1:]

    def torchvision_forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """torchvision's own forward (upsamples after every iteration): last prediction, cropped back."""
        with torch.inference_mode():
            out = [flow.model(flow._prepare(a[i:i + 3], pad), flow._prepare(b[i:i + 3], pad), num_flow_updates=3)[-1]
                   for i in (0, 3)]
        return torch.cat(out)[:, :, 4:124]

    reference, reference_bw = torchvision_forward(first, second), torchvision_forward(second, first)
    assert torch.equal(flow(first, second), reference)
    fw, bw = flow.consecutive(frames)
    torch.testing.assert_close(fw, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(bw, reference_bw, atol=1e-5, rtol=0)


def test_missing_raft_weights_fail_fast_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("INFVSR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    t0 = time.perf_counter()
    with pytest.raises(WeightsMissingError, match=RAFT_FILE):
        build_metric("ewarp", {})
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(WeightsMissingError, match="raft_large_C_T_V2-1bb1363a.pth"):
        build_metric("ewarp", {"flow_options": {"weights": "C_T_V2"}})


def test_raft_weights_load_from_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("INFVSR_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(3)
    state = raft_large(weights=None).state_dict()
    (tmp_path / "weights" / "torchvision").mkdir(parents=True)
    torch.save(state, tmp_path / "weights" / "torchvision" / RAFT_FILE)
    flow = build_flow("raft", {}, None)
    assert flow.weights == "pretrained"
    assert flow.weights_sha256 == {RAFT_FILE: sha256_file(tmp_path / "weights" / "torchvision" / RAFT_FILE)}
    for k, v in flow.model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_tof_zero_on_identical_and_grows_with_motion():
    gt = translated(10, (1.0, 0.0))
    m = build_metric("tof", {})
    same = feed(m, gt, gt, (4, 6))
    assert same.frames["frame"].tolist() == list(range(3, 8))  # 2 frames skipped at each end
    assert same.scalars["tof"] == 0.0
    values = [feed(m, translated(10, (dx, 0.0)), gt).scalars["tof"] for dx in (2.0, 4.0)]
    assert 0.5 < values[0] < values[1]
    assert m.weights == "none" and "winsize=15" in m.version and "skip_ends=2" in m.version


def test_tof_matches_direct_farneback():
    gt, sr = translated(8, (1.0, 0.5)), flicker(translated(8, (1.5, 0.0)), 0.05)
    got = feed(build_metric("tof", {"crop_8x8": False}), sr, gt, (3, 3, 2))  # full frames (crop: test_protocols)

    def of(v, t):
        a, b = (cv2.cvtColor(v[i], cv2.COLOR_RGB2GRAY) for i in (t - 1, t))
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    expected = [np.sqrt(((of(gt, t) - of(sr, t)) ** 2).sum(-1)).mean() for t in range(3, 6)]
    assert got.frames["frame"].tolist() == [3, 4, 5]
    np.testing.assert_allclose(got.frames["tof"], expected, rtol=1e-5)
    assert got.scalars["tof"] == pytest.approx(np.mean(expected), rel=1e-5)


def test_tlp_zero_on_identical_and_matches_direct_lpips():
    gt = translated(7, (1.0, 0.5), size=(64, 64))
    m = build_metric("tlp", {"weights": "random", "device": "cpu", "batch_size": 3, "crop_8x8": False})
    assert m.weights == "random" and "lpips/weights/v0.1/alex.pth" in m.weights_sha256
    same = feed(m, gt, gt, (2, 5))
    assert same.frames["frame"].tolist() == [3, 4]
    np.testing.assert_allclose(same.frames["tlp"], 0.0, atol=1e-5)
    sr = flicker(gt, 0.1)
    got = feed(m, sr, gt, (5, 2))

    def d(v: np.ndarray, t: int) -> float:
        a, b = (torch.from_numpy(v[i]).permute(2, 0, 1)[None].float() / 255 for i in (t - 1, t))
        with torch.no_grad():
            return m.lpips(a, b, normalize=True).item()

    expected = [100 * abs(d(gt, t) - d(sr, t)) for t in (3, 4)]
    np.testing.assert_allclose(got.frames["tlp"], expected, rtol=1e-4, atol=1e-6)
    assert min(expected) > 0


def test_lpips_trunk_loads_torchvision_alexnet_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = ALEXNET.filename
    with pytest.raises(WeightsMissingError, match=name):
        build_lpips(folder=str(tmp_path / "weights"))
    from torchvision.models import alexnet

    torch.manual_seed(5)
    features = {f"features.{k}": v for k, v in alexnet(weights=None).features.state_dict().items()}
    (tmp_path / "weights" / "torchvision").mkdir(parents=True)
    torch.save(features, tmp_path / "weights" / "torchvision" / name)
    model, status, sums = build_lpips(folder=str(tmp_path / "weights"))
    assert status == "pretrained" and name in sums
    assert torch.equal(getattr(model.net.slice1, "0").weight, features["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").weight, features["features.10.weight"])


def test_ewarp_flow_from_gt_uses_gt_motion():
    gt = translated(5, (1.3, 0.6))
    from_gt = build_metric("ewarp_dis", {"flow_source": "gt"})
    assert from_gt.needs_gt and not build_metric("ewarp_dis", {}).needs_gt
    same = feed(from_gt, gt, gt).frames["ewarp_dis"]
    np.testing.assert_allclose(same, feed(build_metric("ewarp_dis", {}), gt).frames["ewarp_dis"], rtol=1e-6)
    static = np.repeat(gt[:1], 5, axis=0)  # output that does not follow the GT's motion
    assert feed(from_gt, static, gt).scalars["ewarp_dis"] > 10 * same.mean()
    with pytest.raises(ConfigError, match="LR input is not available"):
        build_metric("ewarp_dis", {"flow_source": "input"})
