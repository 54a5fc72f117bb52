"""TecoGAN's temporal metrics tOF and tLP: how far the output's frame-to-frame change departs from the GT's.

Both score pairs (t-1, t), reported at frame t, and skip ``skip_ends`` frames at each end of the
clip: a pair counts only when both its frames lie in [first + skip_ends, last - skip_ends]. While
streaming the first ``skip_ends`` pairs are dropped as they come; the last ``skip_ends`` are dropped
at ``compute``, when the clip's end is known. With ``crop_8x8`` (default, protocol ``tecogan``) the
order is TecoGAN's ``metrics.py`` (thunil/TecoGAN@069d983): tOF computes the flow on the whole frames
and crops the flow fields; tLP crops the frames before LPIPS.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import torch

from infvsr_bench.devices import resolve_device
from infvsr_bench.errors import ClipError
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.metrics.flow import FlowRuntime, build_flow, describe
from infvsr_bench.metrics.settings import TLPSettings, TOFSettings
from infvsr_bench.weights import CATALOGUE, WeightsKind, load_into, load_tensors, resolve_weights


def crop_8x8_box(size: int) -> tuple[int, int]:
    """TecoGAN's ``crop_8x8`` along one dimension: (offset, length) of the largest multiple of 32 that
    leaves at least 16 pixels, centred (offset ``(size - length) // 2``, so at least 8 on each side)."""
    length = size // 32 * 32
    while length > size - 16:
        length -= 32
    return (size - length) // 2, length


def crop_8x8_slices(height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns ``crop_8x8`` keeps of a ``height`` x ``width`` image; refuses images it leaves empty."""
    (y, h), (x, w) = crop_8x8_box(height), crop_8x8_box(width)
    if h <= 0 or w <= 0:
        raise ClipError(f"TecoGAN's crop_8x8 needs frames of at least 48x48 pixels, got {width}x{height}")
    return slice(y, y + h), slice(x, x + w)


class PairMetric(Metric):
    """A full-reference metric of consecutive-frame pairs with TecoGAN's end skip; keeps one frame pair."""

    kind = MetricKind.FULL_REFERENCE
    higher_is_better = False
    runtime_options = ("device", "batch_size", "weights", "weights_dir", "allow_download")
    weights_choices = ("auto", "random")
    crops_frames = True  # crop_8x8 applies to the frames (tLP); False: the subclass crops what it derives (tOF)

    def protocol(self) -> str:
        return "tecogan" if self.settings.crop_8x8 else self.default_protocol

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.device = resolve_device(runtime.get("device", "auto"))
        self.batch_size = int(runtime.get("batch_size", 8))
        self.version = f"{type(self).version}[{describe(self.settings)}]"

    def reset(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # last (output, GT) frame
        self._first: int | None = None
        self._next: int | None = None
        self._frames: list[int] = []
        self._values: list[float] = []

    @abstractmethod
    def pair_values(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        """Values of the pairs (t-1, t) of T frames ([T,3,H,W] in [0,1] on ``self.device``): T-1 values."""

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        if gt is None:
            raise ClipError(f"{self.column} needs ground truth")
        if self._next is not None and frame_index != self._next:
            raise ValueError(f"{self.column}: expected frame {self._next}, got {frame_index} (chunks must be contiguous)")
        if self._first is None:
            self._first = frame_index
        if self.settings.crop_8x8:
            rows, cols = crop_8x8_slices(sr.shape[1], sr.shape[2])  # refuses frames too small at once
            if self.crops_frames:
                sr, gt = sr[:, rows, cols], gt[:, rows, cols]
        start = frame_index
        if self._prev is not None:
            sr, gt, start = np.concatenate([self._prev[0][None], sr]), np.concatenate([self._prev[1][None], gt]), start - 1
        self._prev, self._next = (sr[-1].copy(), gt[-1].copy()), start + len(sr)
        if len(sr) < 2:
            return
        values = self.pair_values(self._tensor(sr), self._tensor(gt))
        first_kept = self._first + self.settings.skip_ends + 1  # pair (t-1, t) with t-1 >= first + skip
        for t, v in zip(range(start + 1, start + len(sr)), values):
            if t >= first_kept:
                self._frames.append(t)
                self._values.append(float(v))

    def _tensor(self, frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 255

    def compute(self) -> MetricResult:
        frames = np.asarray(self._frames, dtype=np.int64)
        values = np.asarray(self._values, dtype=np.float64)
        if self._next is not None:
            keep = frames <= self._next - 1 - self.settings.skip_ends
            frames, values = frames[keep], values[keep]
        table = pd.DataFrame({"frame": frames, self.column: values})
        return MetricResult(frames=table, scalars={self.column: float(values.mean()) if values.size else float("nan")})


class TOF(PairMetric):
    """TecoGAN tOF: mean per-pixel L2 distance between the GT's and the output's flow (t-1 -> t)."""

    name = "tof"
    version = "3"  # 2: TecoGAN's crop_8x8 by default; 3: the crop applies to the flow, not the frames
    Settings = TOFSettings
    crops_frames = False

    def __init__(self, settings: TOFSettings | None = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        self.flow = build_flow(self.settings.flow, self.settings.flow_options, FlowRuntime(**runtime))
        self.weights, self.weights_sha256 = self.flow.weights, dict(self.flow.weights_sha256)

    def pair_values(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        n = len(sr) - 1
        flows = self.flow(torch.cat((gt[:-1], sr[:-1])), torch.cat((gt[1:], sr[1:])))
        if self.settings.crop_8x8:
            rows, cols = crop_8x8_slices(*flows.shape[-2:])
            flows = flows[..., rows, cols]
        dist = ((flows[:n] - flows[n:]) ** 2).sum(1).sqrt().mean((1, 2))
        return dist.double().cpu().numpy() * self.settings.scale


ALEXNET = CATALOGUE["torchvision/alexnet-owt-7be5be79.pth"]  # the same file pyiqa's LPIPS uses
LPIPS_LINEAR = CATALOGUE["lpips_v0.1/alex.pth"]  # the v0.1 linear layers, the lpips package's copy


def build_lpips(weights: str = "auto", folder: str | None = None,
                allow_download: bool = False) -> tuple[torch.nn.Module, WeightsKind, dict[str, str]]:
    """LPIPS AlexNet v0.1: linear layers shipped by `lpips`, trunk = torchvision's ImageNet AlexNet (``weights``:
    auto, or random for a seeded random trunk).

    Returns (model, weights kind of the trunk, sha256 by file). Both files are resolved (weights folder, then
    torch's hub cache or the package's copy) before anything is built, so a missing file fails at once.
    """
    trunk = resolve_weights(weights, [ALEXNET], folder, allow_download)
    linear = resolve_weights("auto", [LPIPS_LINEAR], folder)
    import lpips

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)  # lpips calls torchvision's deprecated pretrained=False
        torch.manual_seed(0)  # a random trunk (tests) is the same network every time
        model = lpips.LPIPS(pretrained=False, net="alex", version="0.1", pnet_rand=True, verbose=False)
    path, lin = trunk.path(ALEXNET), linear.path(LPIPS_LINEAR)
    trunk_state = None if path is None else load_tensors(path)  # both read before either is loaded
    lin_state = load_tensors(lin)
    if path is not None:
        # lpips keeps AlexNet's feature layers under their own indices: slice<k>.<i>.* = features.<i>.*
        features = {k: "features." + k.split(".", 1)[1] for k in model.net.state_dict()}
        load_into(model.net, {k: trunk_state[f] for k, f in features.items() if f in trunk_state}, path)
    load_into(model, lin_state, lin, strict=False)  # as lpips loads them (pretrained=True, non-strict)
    # Recorded under the package path it has always been recorded under.
    sums = {f"{LPIPS_LINEAR.shipped[0]}/{LPIPS_LINEAR.shipped[1]}": linear.found[LPIPS_LINEAR.filename].sha256}
    return model.eval(), trunk.kind, {**sums, **trunk.sha256}


class TLP(PairMetric):
    """TecoGAN tLP: |LPIPS(gt_{t-1}, gt_t) - LPIPS(out_{t-1}, out_t)| x 100."""

    name = "tlp"
    version = "2"  # 2: TecoGAN's crop_8x8 by default
    Settings = TLPSettings

    def __init__(self, settings: TLPSettings | None = None, column: str | None = None, **runtime: Any) -> None:
        super().__init__(settings, column, **runtime)
        model, self.weights, self.weights_sha256 = build_lpips(
            self.weights_choice, runtime.get("weights_dir"), bool(runtime.get("allow_download", False)))
        self.lpips = model.to(self.device)

    @torch.inference_mode()
    def pair_values(self, sr: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        n = len(sr) - 1
        a, b = torch.cat((gt[:-1], sr[:-1])), torch.cat((gt[1:], sr[1:]))
        d = torch.cat([self.lpips(a[i:i + self.batch_size], b[i:i + self.batch_size], normalize=True).flatten()
                       for i in range(0, len(a), self.batch_size)])
        return (d[:n] - d[n:]).abs().double().cpu().numpy() * self.settings.scale
