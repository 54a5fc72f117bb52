"""The networks metrics are built on, public to the other layers (InfVSR training's perceptual loss).

``build_lpips``: LPIPS v0.1 AlexNet as tLP builds it; ``build_lite0``: the shipped EfficientNet-Lite0
feature backbone. Each is defined beside the metric that uses it (teco.py, features.py); code outside
``infvsr_bench.metrics`` imports them from here.
"""

from infvsr_bench.metrics.features import build_lite0
from infvsr_bench.metrics.teco import build_lpips

__all__ = ["build_lite0", "build_lpips"]
