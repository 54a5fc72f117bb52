"""Semantic consistency of long clips: VBench subject/background consistency and a drift family.

All metrics keep features (never frames) and bounded state: the first and previous features, a ring
of recent features plus strided anchors for the frame-gap curve, and one float per frame per series.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from infvsr_bench.devices import resolve_device
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult
from infvsr_bench.metrics.features import FeatureBank
from infvsr_bench.metrics.scene_cuts import SceneCutDetector
from infvsr_bench.metrics.settings import ClipConsistencySettings, ConsistencySettings, DriftSettings

STATIC_EPS = 1e-6  # 1 - cos below this is float32 rounding of equal features, not change


def clip_precision(name: str, device: torch.device) -> str:
    """The precision CLIP runs in for a ``precision`` setting on ``device``: "vbench" = float16 on CUDA, else float32."""
    if name == "vbench":
        return "float16" if device.type == "cuda" else "float32"
    return name


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) of unit features per row (b: one row for all, or one per row). float32 features: float64 dot
    products, by einsum, which sums every row in the same order whatever the chunk's length (BLAS's matrix-vector
    product does not), so streamed values equal one chunk's bit for bit. float16 features (CLIP in float16, as
    VBench on CUDA): torch's cosine_similarity in float16, as VBench computes them."""
    if a.dtype == np.float16:
        return F.cosine_similarity(torch.from_numpy(a), torch.from_numpy(b), dim=-1).double().numpy()
    return np.einsum("ij,ij->i" if b.ndim == 2 else "ij,j->i", a.astype(np.float64), b.astype(np.float64))


class _VBenchTerms:
    """VBench's per-frame term 0.5 [max(0, cos(d_prev, d_t)) + max(0, cos(d_0, d_t))], streamed."""

    def __init__(self) -> None:
        self.first: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.frames: list[np.ndarray] = []  # every scored frame, the first included
        self.sim_prev: list[np.ndarray] = []  # cos to the previous scored frame (from the second on)
        self.sim_first: list[np.ndarray] = []  # cos to the first frame (the first included)

    def add(self, index: np.ndarray, feats: np.ndarray) -> None:
        if not len(index):
            return
        if self.first is None:
            self.first = self.prev = feats[0]
        self.frames.append(index)
        self.sim_first.append(_cosines(feats, self.first))
        chain = np.vstack([self.prev[None], feats])
        sims = _cosines(chain[:-1], chain[1:])
        self.sim_prev.append(sims[1:] if len(self.frames) == 1 else sims)
        self.prev = feats[-1]

    def series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frames, sim_prev with NaN for the first frame, sim_first)."""
        frames = np.concatenate(self.frames) if self.frames else np.zeros(0, np.int64)
        prev = np.concatenate([[np.nan], *self.sim_prev]) if self.frames else np.zeros(0)
        first = np.concatenate(self.sim_first) if self.frames else np.zeros(0)
        return frames, prev, first

    def result(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(frames, per-frame term with NaN for the first frame, S = mean of the terms)."""
        frames, prev, first = self.series()
        terms = 0.5 * (np.maximum(0.0, prev) + np.maximum(0.0, first))
        return frames, terms, float(np.mean(terms[1:])) if len(terms) > 1 else float("nan")


class _GapSimilarity:
    """Mean cos(d_{t-dt}, d_t) per gap dt, from a ring of recent features plus strided anchors.

    Gaps up to ``ring_size`` frames are exact: every pair of scored frames that far apart counts.
    Longer gaps count only pairs whose earlier frame index is a multiple of ``anchor_stride``: a
    deterministic 1-in-``anchor_stride`` sample of the pairs, spread evenly over the clip.
    """

    def __init__(self, gaps: tuple[int, ...], ring_size: int, anchor_stride: int) -> None:
        self.gaps, self.ring_size, self.anchor_stride = gaps, ring_size, anchor_stride
        self.recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self.anchors: OrderedDict[int, np.ndarray] = OrderedDict()
        self.sums = np.zeros(len(gaps))
        self.counts = np.zeros(len(gaps), np.int64)

    def add(self, index: np.ndarray, feats: np.ndarray) -> None:
        longest = self.gaps[-1]
        for t, f in zip(index.tolist(), feats.astype(np.float64)):
            for k, dt in enumerate(self.gaps):
                earlier = (self.recent if dt <= self.ring_size else self.anchors).get(t - dt)
                if earlier is not None:
                    self.sums[k] += float(earlier @ f)
                    self.counts[k] += 1
            self.recent[t] = f
            while next(iter(self.recent)) < t - self.ring_size:
                self.recent.popitem(last=False)
            if longest > self.ring_size and t % self.anchor_stride == 0:
                self.anchors[t] = f
            while self.anchors and next(iter(self.anchors)) < t - longest:
                self.anchors.popitem(last=False)

    def curve(self) -> pd.DataFrame:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(self.counts > 0, self.sums / self.counts, np.nan)
        return _curve("sim_gap", np.asarray(self.gaps), means, self.counts)


class _ReferenceSimilarity:
    """cos(mean feature of the first ``frames`` frames, d_t): the similarity to the first chunk."""

    def __init__(self, frames: int) -> None:
        self.window = frames
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []  # frames inside the window, until it closes
        self.reference: np.ndarray | None = None
        self.frames: list[np.ndarray] = []
        self.sims: list[np.ndarray] = []

    def _close(self) -> None:
        feats = np.concatenate([f for _, f in self.pending])
        mean = feats.mean(axis=0)
        self.reference = mean / np.linalg.norm(mean)
        for index, f in self.pending:
            self._score(index, f)
        self.pending = []

    def _score(self, index: np.ndarray, feats: np.ndarray) -> None:
        self.frames.append(index)
        self.sims.append(np.einsum("ij,j->i", feats, self.reference))  # chunk-independent rounding, as sim_first

    def add(self, index: np.ndarray, feats: np.ndarray) -> None:
        f = feats.astype(np.float64)
        if self.reference is not None:
            self._score(index, f)
            return
        inside = index < self.window
        self.pending.append((index[inside], f[inside]))
        if not inside.all():
            self._close()
            self._score(index[~inside], f[~inside])

    def curve(self) -> pd.DataFrame:
        if self.reference is None and any(len(i) for i, _ in self.pending):
            self._close()  # a clip shorter than the window: its mean is over all its frames
        frames = np.concatenate(self.frames) if self.frames else np.zeros(0, np.int64)
        sims = np.concatenate(self.sims) if self.sims else np.zeros(0)
        return _curve("sim_reference", frames, sims, np.ones(len(frames), np.int64))


def _curve(name: str, x: np.ndarray, value: np.ndarray, count: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"curve": name, "x": np.asarray(x, np.int64), "value": np.asarray(value, np.float64),
                         "count": np.asarray(count, np.int64)})


def boundary_discontinuity(
    frames: np.ndarray, sim_prev: np.ndarray, chunk_starts: list[int] | None, cuts: list[int] = ()
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean (1 - cos) of adjacent scored pairs across chunk boundaries over the mean (1 - cos) of the
    pairs inside chunks, scene cuts left out of both: 1.0 = invisible boundaries, above 1 = seams.

    The pair (previous scored frame p, t) crosses a boundary when a chunk starts in (p, t]; it is a
    cut transition when a scene cut (the first frame of a new shot) lies in (p, t]. A cut transition
    compares two shots, not two chunks: inside a chunk it would inflate the denominator, and a method
    that starts a chunk at every cut would have it counted as a seam, so it belongs to neither side.
    Returns (ratio, boundary frame of each crossing pair, its own ratio); NaN when the layout is
    unknown (None) or no pair crosses a boundary.
    """
    starts = np.asarray(sorted(s for s in chunk_starts or () if s > 0), np.int64)
    if len(frames) < 2 or not len(starts):
        return float("nan"), np.zeros(0, np.int64), np.zeros(0)
    prev, cur, gap = frames[:-1], frames[1:], 1.0 - sim_prev[1:]
    crosses, nxt = _spans(starts, prev, cur)
    keep = ~_spans(np.asarray(sorted(cuts), np.int64), prev, cur)[0]
    inside = gap[~crosses & keep].mean() if (~crosses & keep).any() else float("nan")
    crosses &= keep
    across = gap[crosses]
    if not len(across):
        return float("nan"), np.zeros(0, np.int64), np.zeros(0)
    if inside < STATIC_EPS:  # a static clip: boundaries are invisible only if they change nothing either
        per = np.where(across < STATIC_EPS, 1.0, np.inf)
        return float(1.0 if across.mean() < STATIC_EPS else np.inf), starts[nxt[crosses]], per
    return float(across.mean() / inside), starts[nxt[crosses]], across / inside


def _spans(marks: np.ndarray, prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs (prev, cur] hold one of the sorted ``marks``, and the index of the first such mark."""
    nxt = np.searchsorted(marks, prev, side="right")  # the first mark after the previous frame
    if not len(marks):
        return np.zeros(len(prev), bool), nxt
    return (nxt < len(marks)) & (marks[np.minimum(nxt, len(marks) - 1)] <= cur), nxt


def slope_per_1000(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over frame index x, per 1,000 frames."""
    if len(x) < 2:
        return float("nan")
    dx = x.astype(np.float64) - x.mean()
    return float(1000.0 * (dx @ (y - y.mean())) / (dx @ dx))


class SemanticMetric(Metric):
    """A metric on L2-normalised features of one backbone, shared through ``FeatureBank``."""

    backbone: ClassVar[str]
    kind = MetricKind.SEMANTIC
    higher_is_better = True
    default_protocol = "vbench"  # the main value is VBench's consistency formula
    runtime_options = ("device", "batch_size", "weights", "weights_dir", "allow_download")
    weights_choices = ("auto", "random")

    def __init__(self, settings: Any = None, column: str | None = None, **runtime: Any) -> None:
        device = resolve_device(runtime.get("device", "auto"))
        settings, precision = self.settle(settings if settings is not None else self.Settings(), device)
        self.bank = FeatureBank.get(
            self.backbone, device, weights=self.checked_weights_choice(runtime, column),
            weights_dir=runtime.get("weights_dir"), allow_download=bool(runtime.get("allow_download", False)),
            precision=precision,
        )
        super().__init__(settings, column, **runtime)
        self.weights = self.bank.backbone.weights
        self.weights_sha256 = dict(self.bank.backbone.weights_sha256)

    def settle(self, settings: Any, device: torch.device) -> tuple[Any, str]:
        """(settings as recorded, the backbone's precision) on ``device``: float32 unless the settings choose."""
        return settings, "float32"

    def reset(self) -> None:
        """A new clip: chunk positions start over, so the bank must not serve the last clip's features."""
        self.bank.forget()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "backbone": dict(self.bank.backbone.info, name=self.backbone)}

    def features(self, frames: np.ndarray, frame_index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.bank.features(frames, frame_index, self.settings.stride, int(self.runtime.get("batch_size", 16)))


class VBenchConsistency(SemanticMetric):
    """VBench's S = 1/(T-1) sum_{i>=1} 0.5 [max(0, cos(d_{i-1}, d_i)) + max(0, cos(d_0, d_i))].

    The per-frame column holds each frame's term (NaN for the first frame), so S is its mean.
    """

    Settings = ConsistencySettings

    def reset(self) -> None:
        super().reset()
        self._terms = _VBenchTerms()

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        self._terms.add(*self.features(sr, frame_index))

    def compute(self) -> MetricResult:
        frames, terms, score = self._terms.result()
        return MetricResult(pd.DataFrame({"frame": frames, self.column: terms}), {self.column: score})


class SubjectConsistency(VBenchConsistency):
    name = "subject_consistency"
    version = "1.1/vbench/dino-vitb16-dino-pos-embed-float-resize"
    backbone = "dino"


class BackgroundConsistency(VBenchConsistency):
    name = "background_consistency"
    version = "1.1/vbench/clip-vitb32-openai-float-resize"
    backbone = "clip"
    Settings = ClipConsistencySettings

    def settle(self, settings: ClipConsistencySettings, device: torch.device) -> tuple[ClipConsistencySettings, str]:
        """The precision that runs on this device, recorded in place of "vbench" (a CPU and a CUDA run differ)."""
        precision = clip_precision(settings.precision, device)
        return dataclasses.replace(settings, precision=precision), precision


class SemanticDrift(SemanticMetric):
    """Long-form semantic stability on one backbone: the VBench-formula score, drift curves,
    chunk-boundary discontinuity and, when GT is given, semantic fidelity and its slope.

    Scalars: ``<col>`` (VBench formula), ``<col>_boundary`` (1.0 = boundaries invisible; see
    ``boundary_discontinuity``: adjacent pairs across the method's chunk starts over pairs inside
    chunks, pairs spanning a scene cut in neither; NaN when the method's layout is unknown or it has
    no chunks), ``<col>_fidelity`` and ``<col>_fidelity_slope`` (per 1,000 frames; only with GT).
    Curves: ``sim_first`` and ``sim_reference`` (x = frame), ``sim_gap`` (x = gap, count = pairs),
    ``boundary`` (x = first frame of a chunk, value = its (1 - cos) over the inside-chunk mean),
    ``scene_cut`` (x = first frame of each shot left out, from the dataset or detected).
    """

    Settings = DriftSettings
    needs_chunk_layout = True
    # Derived scalars, in display order, and their directions: the boundary ratio is best at 1
    # (seams invisible; below 1 is no better), the fidelity slope at 0 (a negative slope is drift).
    DERIVED: ClassVar[dict[str, dict[str, Any]]] = {
        "_fidelity": {"higher_is_better": True, "ideal": None},
        "_fidelity_slope": {"higher_is_better": True, "ideal": 0.0},
        "_boundary": {"higher_is_better": False, "ideal": 1.0},
    }

    def info(self) -> dict[str, Any]:
        """Also declares the derived scalar columns with their directions, for reports."""
        return {**super().info(), "columns": {self.column + s: dict(d) for s, d in self.DERIVED.items()}}

    def reset(self) -> None:
        super().reset()
        s = self.settings
        self._terms = _VBenchTerms()
        self._gaps = _GapSimilarity(s.gaps, s.ring_size, s.anchor_stride)
        self._reference = _ReferenceSimilarity(s.reference_frames)
        self._fidelity: list[np.ndarray] = []
        self.chunk_starts: list[int] | None = None
        self.scene_cuts: list[int] | None = None
        self._cut_detector = SceneCutDetector(s.cut_threshold, s.cut_min_frames)

    def _cuts(self) -> list[int]:
        """The scene cuts left out of the boundary ratio (see ``DriftSettings.scene_cuts``)."""
        mode = self.settings.scene_cuts
        if mode == "none":
            return []
        return self.scene_cuts if mode == "auto" and self.scene_cuts is not None else self._cut_detector.cuts

    def update(self, sr: np.ndarray, gt: np.ndarray | None, frame_index: int) -> None:
        mode = self.settings.scene_cuts
        if mode == "detect" or (mode == "auto" and self.scene_cuts is None):
            self._cut_detector.push(sr if gt is None else gt, frame_index)  # every frame, whatever the stride
        index, feats = self.features(sr, frame_index)
        if not len(index):  # no frame of this chunk falls on the stride
            return
        self._terms.add(index, feats)
        self._gaps.add(index, feats)
        self._reference.add(index, feats)
        if gt is not None:
            _, gt_feats = self.features(gt, frame_index)
            self._fidelity.append(np.einsum("ij,ij->i", feats.astype(np.float64), gt_feats.astype(np.float64)))

    def compute(self) -> MetricResult:
        c = self.column
        frames, terms, score = self._terms.result()
        _, sim_prev, sim_first = self._terms.series()
        cuts = self._cuts()
        ratio, at, per_boundary = boundary_discontinuity(frames, sim_prev, self.chunk_starts, cuts)
        table = pd.DataFrame({"frame": frames, c: terms})
        scalars = {c: score, f"{c}_boundary": ratio}
        if self._fidelity:
            fidelity = np.concatenate(self._fidelity)
            table[f"{c}_fidelity"] = fidelity
            scalars[f"{c}_fidelity"] = float(fidelity.mean())
            scalars[f"{c}_fidelity_slope"] = slope_per_1000(frames, fidelity)
        curves = pd.concat([
            _curve("sim_first", frames, sim_first, np.ones(len(frames), np.int64)),
            self._reference.curve(),
            self._gaps.curve(),
            _curve("boundary", at, per_boundary, np.ones(len(at), np.int64)),
            _curve("scene_cut", np.asarray(cuts, np.int64), np.ones(len(cuts)), np.ones(len(cuts), np.int64)),
        ], ignore_index=True)
        return MetricResult(table, scalars, curves)


class SemanticDriftDino(SemanticDrift):
    name = "semantic_drift_dino"
    version = "1.2/dino-vitb16-dino-pos-embed-float-resize"
    backbone = "dino"


class SemanticDriftClip(SemanticDrift):
    name = "semantic_drift_clip"
    version = "1.2/clip-vitb32-openai-float-resize"
    backbone = "clip"


class SemanticOffline(SemanticDrift):
    name = "semantic_offline"
    version = "1.1/efficientnet-lite0-shipped"
    backbone = "efficientnet_lite0"
