"""The metric catalogue: registered names -> streaming metric classes, built from config data."""

from __future__ import annotations

from typing import Any, Mapping

from infvsr_bench.config import from_options
from infvsr_bench.metrics.base import Metric, MetricKind, MetricResult, PerFrameMetric
from infvsr_bench.registry import PairedRegistry, Registry

# Each metric's class and its Settings dataclass (built-ins: metrics/settings.py, which imports no torch).
_REGISTERED: PairedRegistry[type[Metric]] = PairedRegistry("metric", "settings")
METRICS: Registry[type[Metric]] = _REGISTERED.classes
METRIC_SETTINGS: Registry[type] = _REGISTERED.options
register_metric = _REGISTERED.register

_SETTINGS = "infvsr_bench.metrics.settings"
register_metric("psnr", "infvsr_bench.metrics.pixel:PSNR", f"{_SETTINGS}:PSNRSettings")
register_metric("ssim", "infvsr_bench.metrics.pixel:SSIM", f"{_SETTINGS}:PixelSettings")
register_metric("ewarp", "infvsr_bench.metrics.warp_error:Ewarp", f"{_SETTINGS}:EwarpSettings")
register_metric("ewarp_dis", "infvsr_bench.metrics.warp_error:EwarpDIS", f"{_SETTINGS}:EwarpDISSettings")
register_metric("tof", "infvsr_bench.metrics.teco:TOF", f"{_SETTINGS}:TOFSettings")
register_metric("tlp", "infvsr_bench.metrics.teco:TLP", f"{_SETTINGS}:TLPSettings")
register_metric("lpips", "infvsr_bench.metrics.perceptual:LPIPS", f"{_SETTINGS}:NoSettings")
register_metric("dists", "infvsr_bench.metrics.perceptual:DISTS", f"{_SETTINGS}:NoSettings")
register_metric("musiq", "infvsr_bench.metrics.no_reference:MUSIQ", f"{_SETTINGS}:NoSettings")
register_metric("clipiqa", "infvsr_bench.metrics.no_reference:CLIPIQA", f"{_SETTINGS}:NoSettings")
register_metric("niqe", "infvsr_bench.metrics.no_reference:NIQE", f"{_SETTINGS}:NIQESettings")
register_metric("niqe_basicsr", "infvsr_bench.metrics.no_reference:NIQEBasicSR", f"{_SETTINGS}:NIQEBasicSRSettings")
register_metric("dover", "infvsr_bench.metrics.dover:DOVER", f"{_SETTINGS}:DoverSettings")
register_metric("subject_consistency", "infvsr_bench.metrics.semantic:SubjectConsistency",
                f"{_SETTINGS}:ConsistencySettings")
register_metric("background_consistency", "infvsr_bench.metrics.semantic:BackgroundConsistency",
                f"{_SETTINGS}:ClipConsistencySettings")
register_metric("semantic_drift_dino", "infvsr_bench.metrics.semantic:SemanticDriftDino", f"{_SETTINGS}:DriftSettings")
register_metric("semantic_drift_clip", "infvsr_bench.metrics.semantic:SemanticDriftClip", f"{_SETTINGS}:DriftSettings")
register_metric("semantic_offline", "infvsr_bench.metrics.semantic:SemanticOffline", f"{_SETTINGS}:DriftSettings")


def build_metric(column: str, options: Mapping[str, Any] | None) -> Metric:
    """Instantiate the registered metric for one config entry (``metric`` defaults to the key)."""
    options = dict(options or {})
    cls = METRICS.get(str(options.pop("metric", column)))
    runtime = {k: options.pop(k) for k in cls.runtime_options if k in options}
    return cls(from_options(cls.Settings, options, f"metric {column!r}"), column=column, **runtime)


__all__ = ["METRICS", "METRIC_SETTINGS", "Metric", "MetricKind", "MetricResult", "PerFrameMetric", "build_metric",
           "register_metric"]
