"""The metric catalogue: registered names -> streaming metric classes, built from config data."""

from __future__ import annotations

from typing import Any, Mapping

from infvsr_bench.config import from_options
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult, PerFrameMetric
from infvsr_bench.registry import Registry

METRICS: Registry[type[Metric]] = Registry("metric")
METRICS.register("psnr", "infvsr_bench.metrics.pixel:PSNR")
METRICS.register("ssim", "infvsr_bench.metrics.pixel:SSIM")
METRICS.register("ewarp", "infvsr_bench.metrics.warp_error:Ewarp")
METRICS.register("ewarp_dis", "infvsr_bench.metrics.warp_error:EwarpDIS")
METRICS.register("tof", "infvsr_bench.metrics.teco:TOF")
METRICS.register("tlp", "infvsr_bench.metrics.teco:TLP")
METRICS.register("lpips", "infvsr_bench.metrics.perceptual:LPIPS")
METRICS.register("dists", "infvsr_bench.metrics.perceptual:DISTS")
METRICS.register("musiq", "infvsr_bench.metrics.no_reference:MUSIQ")
METRICS.register("clipiqa", "infvsr_bench.metrics.no_reference:CLIPIQA")
METRICS.register("niqe", "infvsr_bench.metrics.no_reference:NIQE")
METRICS.register("niqe_basicsr", "infvsr_bench.metrics.no_reference:NIQEBasicSR")
METRICS.register("dover", "infvsr_bench.metrics.dover:DOVER")
METRICS.register("subject_consistency", "infvsr_bench.metrics.semantic:SubjectConsistency")
METRICS.register("background_consistency", "infvsr_bench.metrics.semantic:BackgroundConsistency")
METRICS.register("semantic_drift_dino", "infvsr_bench.metrics.semantic:SemanticDriftDino")
METRICS.register("semantic_drift_clip", "infvsr_bench.metrics.semantic:SemanticDriftClip")
METRICS.register("semantic_offline", "infvsr_bench.metrics.semantic:SemanticOffline")


def build_metric(column: str, options: Mapping[str, Any] | None) -> Metric:
    """Instantiate the registered metric for one config entry (``metric`` defaults to the key)."""
    options = dict(options or {})
    cls = METRICS.get(str(options.pop("metric", column)))
    runtime = {k: options.pop(k) for k in cls.runtime_options if k in options}
    return cls(from_options(cls.Settings, options, f"metric {column!r}"), column=column, **runtime)


__all__ = ["METRICS", "Metric", "MetricKind", "MetricResult", "PerFrameMetric", "build_metric"]
